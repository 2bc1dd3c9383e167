-- progress.lua: the client acknowledged bytes of a connection; renew the lease, record what
-- the client has, maybe complete.
-- KEYS, ARGV[1..ARG]: see includes/args.lua and includes/settings.lua.
-- ARGV[ARG + 1] token id   ARGV[ARG + 2] connection id
-- ARGV[ARG + 3] first byte of the connection's range   ARGV[ARG + 4] end (exclusive) of what the client
--          acknowledged so far   ARGV[ARG + 5] bytes acknowledged since the last report
-- ARGV[ARG + 6] end (exclusive) of the range the request asked for
-- ARGV[ARG + 7] 1 when the connection is closing, else 0
-- ARGV[ARG + 8] 1 when the connection has handed every byte of a range that runs to the file's end to
--          its kernel: if its process dies now, the kernel still delivers them, so the
--          connection then counts as finished (a client that lacks them resumes from the tail)
-- ARGV[ARG + 9] 1 when the host's bandwidth share held the connection back (its throughput is
--          what it was given, not what its client could take: it counts as MIN_RATE)
-- A token completes when the client acknowledged every byte of the file under it, or when a
-- closing connection whose range ran to the file's end had every byte acknowledged, no other
-- connection of the token is open, and no byte another connection of it closed without is
-- still owed (a resume, perhaps under a new token or after a dead process, is a complete
-- download; aria2c's interrupted segments are not).
-- Returns JSON: the snapshot plus state =
--   (a REPLY) ok (lease renewed) | paused (no connection open: slot kept for the resume grace)
--   | complete (slot freed, token spent, next waiter admitted) | gone (slot reclaimed: stop).
--- @include "reclaim"
--- @include "admission"
--- @include "reply"
local id = arg_id(ARG + 1, 'token id')
local conn = arg_id(ARG + 2, 'connection id')
local first = arg_int(ARG + 3, 0, MAX_INT, 'first')
local last = arg_int(ARG + 4, first, MAX_INT, 'last')
local delta = arg_int(ARG + 5, 0, MAX_INT, 'delta')
local range_end = arg_int(ARG + 6, first, MAX_INT, 'range end')
local closing = ARGV[ARG + 7] == '1'
local handed = ARGV[ARG + 8] == '1'
local paced = ARGV[ARG + 9] == '1'
begin()
local info = get_info(id)
local state
if not info or info.s == STATE.WAITING then
  state = REPLY.GONE
else
  info.b = (info.b or 0) + delta
  if delta > 0 then
    bump('bytes', delta)
    per_minute('mb', delta)
  end
  -- the download's recent throughput (constants.py: THROUGHPUT_WINDOW)
  local samples = info.hs or {}
  local newest = samples[#samples]
  if not newest or NOW - newest[1] >= THROUGHPUT_SAMPLE then
    samples[#samples + 1] = {NOW, info.b}
    for _ = 1, THROUGHPUT_SAMPLES do
      if #samples <= 2 or (NOW - samples[2][1] < THROUGHPUT_WINDOW and #samples <= THROUGHPUT_SAMPLES) then break end
      table.remove(samples, 1)
    end
    info.hs = samples
    if #samples >= 2 then
      info.tp = (info.b - samples[1][2]) * 1000 / (NOW - samples[1][1])
    elseif info.st and NOW > info.st then
      info.tp = info.b * 1000 / (NOW - info.st)  -- a first guess until a second report
    end
  end
  if BUDGET > 0 then
    if delta > 0 then per_second(delta) end
    if paced then commit(info, MIN_RATE) elseif info.tp then commit(info, math.min(info.tp, MIN_RATE)) end
  end
  if last > first then
    local ranges = info.r or {}
    ranges[#ranges + 1] = {first, last}
    info.r = merge_ranges(ranges)
  end
  info.c = info.c or {}
  if handed and not closing and range_end >= (info.z or 0) then
    info.k = info.k or {}
    info.k[conn] = 1
  end
  if closing then
    if info.k then info.k[conn] = nil end
    if info.c[conn] ~= nil and info.c[conn] ~= '' then
      redis.call('ZREM', H, info.c[conn] .. '|d|' .. id .. '|' .. conn)
    end
    info.c[conn] = nil
    if info.n then
      info.n[conn] = nil
      if next(info.n) == nil then info.n = nil end
    end
    if last >= range_end and range_end >= (info.z or 0) then
      info.t = 1
    elseif last < range_end then
      local holes = info.w or {}
      holes[#holes + 1] = {last, range_end}
      info.w = merge_ranges(holes)
    end
  else
    info.n = info.n or {}
    info.n[conn] = {last, range_end}
    if info.c[conn] ~= OWNER then
      info.c[conn] = OWNER
      if OWNER ~= '' then redis.call('ZADD', H, 0, OWNER .. '|d|' .. id .. '|' .. conn) end
    end
  end
  state = settle(id, info)
end
fill()
return reply(publish(), {state = state})
