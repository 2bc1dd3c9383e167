-- progress.lua: the reports of a process's download connections (every one it has news of, sent
-- together about once a second, or one alone when a connection closes): what each client
-- acknowledged; renews the leases, records what the clients have, maybe completes.
-- KEYS, ARGV[1..ARG]: see includes/args.lua and includes/settings.lua.
-- ARGV[ARG + 1] how many reports follow (1 to PROGRESS_BATCH), then REPORT_FIELDS ARGV each:
--   +1 token id   +2 connection id   +3 first byte of the connection's range
--   +4 end (exclusive) of what the client acknowledged so far   +5 bytes acknowledged since its
--      last report   +6 end (exclusive) of the range the request asked for
--   +7 1 when the connection is closing, else 0
--   +8 1 when the connection has handed every byte of a range that runs to the file's end to
--      its kernel: if its process dies now, the kernel still delivers them, so the connection
--      then counts as finished (a client that lacks them resumes from the tail)
--   +9 1 when the host's bandwidth share held the connection back (its throughput is what it
--      was given, not what its client could take: it counts as MIN_RATE)
--   +10 how long before this call the client had acknowledged that much (ms, at most
--      REPORT_AGE_MAX): a report waits for its process's next call, and the throughput is
--      measured at the time it was true
-- Every report is checked before any is applied; a token may have several in one call (one per
-- connection), applied in order.
-- A token completes when the client acknowledged every byte of the file under it, or when a
-- closing connection whose range ran to the file's end had every byte acknowledged, no other
-- connection of the token is open, and no byte another connection of it closed without is
-- still owed (a resume, perhaps under a new token or after a dead process, is a complete
-- download; aria2c's interrupted segments are not).
-- Also the process's sign of life, and reclaims what ran out (as reap.lua, whose place it takes
-- in a round of a process with downloads running).
-- Returns JSON: the snapshot (due as reap.lua's) plus states = one REPLY per report, in order:
--   ok (lease renewed) | paused (no connection open: slot kept for the resume grace)
--   | complete (slot freed, token spent, next waiter admitted) | gone (slot reclaimed: stop).
--- @include "reclaim"
--- @include "admission"
--- @include "reply"
WITH_SCHEDULE = true  -- the reply feeds ETAs
local count_of = arg_int(ARG + 1, 1, PROGRESS_BATCH, 'report count')
local reports = {}
for n = 1, count_of do
  local at = ARG + 1 + (n - 1) * REPORT_FIELDS
  local first = arg_int(at + 3, 0, MAX_INT, 'first')
  local last = arg_int(at + 4, first, MAX_INT, 'last')
  reports[n] = {
    id = arg_id(at + 1, 'token id'), conn = arg_id(at + 2, 'connection id'), first = first, last = last,
    delta = arg_int(at + 5, 0, MAX_INT, 'delta'), range_end = arg_int(at + 6, last, MAX_INT, 'range end'),
    closing = ARGV[at + 7] == '1', handed = ARGV[at + 8] == '1', paced = ARGV[at + 9] == '1',
    at = NOW - arg_int(at + 10, 0, REPORT_AGE_MAX, 'age'),
  }
end

local function agree(x, y) return x <= y * THROUGHPUT_STEADY and y <= x * THROUGHPUT_STEADY end

-- the download's recent throughput (constants.py: THROUGHPUT_WINDOW), from the reports that brought
-- bytes (samples hs): from the oldest within the window, or of the THROUGHPUT_BURSTS newest, to the
-- newest, so a client that acknowledges in bursts is measured over several of them, burst to
-- burst, not by where a window's edges fall between them; to now once it has been silent longer
-- than any gap between its bursts. Steady (ts, for good) once two samples in a row measure it
-- within THROUGHPUT_STEADY of each other and the newest stretch alone agrees: a client that read
-- ahead at the start and now pauses (curl --limit-rate) measures far slower, then faster, until
-- its bursts repeat; the pause, while the window holds it, drags two figures down alike
local function measure(info, at)
  local samples = info.hs or {}
  local newest = samples[#samples]
  local sampled = info.b > (newest and newest[2] or 0) and (not newest or at - newest[1] >= THROUGHPUT_SAMPLE)
  if sampled then
    samples[#samples + 1] = {at, info.b}
    for _ = 1, THROUGHPUT_SAMPLES do
      if #samples <= THROUGHPUT_BURSTS or (at - samples[2][1] < THROUGHPUT_WINDOW and #samples <= THROUGHPUT_SAMPLES) then
        break
      end
      table.remove(samples, 1)
    end
    info.hs = samples
  end
  local first, last, gap = samples[1], samples[#samples], 0
  for i = 2, #samples do gap = math.max(gap, samples[i][1] - samples[i - 1][1]) end  -- at most THROUGHPUT_SAMPLES
  if #samples >= 2 and at - last[1] <= gap then
    info.tp = (last[2] - first[2]) * 1000 / (last[1] - first[1])
  elseif #samples >= 2 then
    info.tp = (info.b - first[2]) * 1000 / (at - first[1])
  elseif info.st and at > info.st then
    info.tp = info.b * 1000 / (at - info.st)  -- a first guess until a second sample
  end
  if sampled and #samples >= 2 then
    local before = samples[#samples - 1]
    local step = (last[2] - before[2]) * 1000 / (last[1] - before[1])  -- the newest stretch alone
    if info.tv and agree(info.tp, info.tv) and agree(info.tp, step) then info.ts = 1 end
    info.tv = info.tp
  end
end

-- a connection that closes: what it lacked of its range is owed, unless it ran to the end
local function close_connection(info, r)
  if info.k then info.k[r.conn] = nil end
  if info.c[r.conn] ~= nil and info.c[r.conn] ~= '' then
    redis.call('ZREM', H, info.c[r.conn] .. '|d|' .. r.id .. '|' .. r.conn)
  end
  info.c[r.conn] = nil
  if info.n then
    info.n[r.conn] = nil
    if next(info.n) == nil then info.n = nil end
  end
  if r.last >= r.range_end and r.range_end >= (info.z or 0) then
    info.t = 1
  elseif r.last < r.range_end then
    local holes = info.w or {}
    holes[#holes + 1] = {r.last, r.range_end}
    info.w = merge_ranges(holes)
  end
end

local function apply(r)
  local info = get_info(r.id)
  if not info or info.s == STATE.WAITING then return REPLY.GONE end
  info.b = (info.b or 0) + r.delta
  measure(info, r.at)
  if BUDGET > 0 then
    if r.paced then commit(info, MIN_RATE) elseif info.tp then commit(info, math.min(info.tp, MIN_RATE)) end
  end
  if r.last > r.first then
    local ranges = info.r or {}
    ranges[#ranges + 1] = {r.first, r.last}
    info.r = merge_ranges(ranges)
  end
  info.c = info.c or {}
  if r.handed and not r.closing and r.range_end >= (info.z or 0) then
    info.k = info.k or {}
    info.k[r.conn] = 1
  end
  if r.closing then
    close_connection(info, r)
  else
    info.n = info.n or {}
    info.n[r.conn] = {r.last, r.range_end}
    if info.c[r.conn] ~= OWNER then
      info.c[r.conn] = OWNER
      if OWNER ~= '' then redis.call('ZADD', H, 0, OWNER .. '|d|' .. r.id .. '|' .. r.conn) end
    end
  end
  return settle(r.id, info), r.delta
end

begin()
local states, bytes = {}, 0
for n = 1, count_of do
  local state, delta = apply(reports[n])
  states[n] = state
  bytes = bytes + (delta or 0)
end
if bytes > 0 then
  bump('bytes', bytes)
  per_minute('mb', bytes)
  if BUDGET > 0 then per_second(bytes) end
end
fill()
return reply(publish(), {states = states, due = release_due() or nil})
