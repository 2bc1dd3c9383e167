-- lib.lua: helpers prepended to every queue script (not a script by itself).
--
-- Every script receives the same KEYS, all sharing one {hash tag} (layout: app/queue/keys.py):
--   KEYS[1]  waiting   ZSET  token id -> join number (FIFO order)
--   KEYS[2]  presence  ZSET  waiting token id held by no live stream -> deadline (ms) to be seen by
--   KEYS[3]  active    ZSET  admitted token id -> lease deadline (ms)
--   KEYS[4]  info      HASH  token id -> JSON state of a waiting or admitted token
--   KEYS[5]  spent     ZSET  completed token id -> token expiry (ms); pruned once expired
--   KEYS[6]  counters  HASH  seq (last join number), version (last event), epoch (when these
--                            counters were born), skew (ms added to Redis time; tests only)
--   KEYS[7]  admits    LIST  Redis time (ms) of the latest admissions, newest first
--   KEYS[8]  journal   STREAM history events (admitted/started/finished) for the database
--   KEYS[9]  settings  HASH  the queue's rules (capacity, durations, mode = open|paused|draining):
--                            the one source of truth
--   KEYS[10] owners    ZSET  process id -> last sign of life (ms); negative while being reaped
--   KEYS[11] held      ZSET  (score 0, by lex) "owner|w|token" and "owner|d|token|conn": what
--                            each process holds (waiter streams, download connections)
--   KEYS[12] expiry    ZSET  waiting token id -> token expiry (ms)
--   KEYS[13] done      HASH  completed token id -> JSON {u = resumable until, r = tail bytes left};
--                            x = 1: an operator removed it (it may not join or download again)
--   KEYS[14] stats     HASH  running totals for metrics (joins, admissions, outcome_<kind>,
--                            dropped_<reason>, histograms <name>_b<i>/_sum/_n) and the last
--                            hour per minute (m<k> = minute, mb<k> bytes, ma<k> admissions)
--                            and the last seconds (s<k> = second, sb<k> acknowledged bytes)
-- and the same leading ARGV:
--   ARGV[1]  pub/sub channel for state-change events (names the queue and the database); the
--            line before lib.lua sets PUBLISH: 'SPUBLISH' on a cluster, 'PUBLISH' elsewhere
--   ARGV[2]  the calling process's owner id ('' for none); a call is its sign of life
--   ARGV[3..ARG] settings to seed when the queue has none: capacity, max queue length,
--            admit timeout ms, stall timeout ms, resume grace ms, wait grace ms,
--            max connections per token, resume tail bytes, egress budget (bytes/s, 0 = none),
--            min rate (bytes/s)
-- Script-specific ARGV start at ARGV[ARG + 1] (ARG = 2 + the number of settings).
-- Bad arguments raise "BADARG ..." before any write.
local W, P, A, I, S, C, R, J = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local CFG, O, H, E, D, ST = KEYS[9], KEYS[10], KEYS[11], KEYS[12], KEYS[13], KEYS[14]

local RATE_WINDOW = 32      -- admissions kept for the rate
local BATCH = 64            -- most items one call reclaims (or admits), all steps together
local OWNER_TTL = 5000      -- ms without a sign of life before a process counts as dead
local OWNER_BATCH = 4       -- dead processes looked at per call
local MAX_MS = 1e13         -- any time or duration in ms beyond this is a bad argument
local MAX_INT = 9007199254740991

local function bad(name)
  error({err = 'BADARG ' .. name})
end

local function arg_int(i, lo, hi, name)
  local v = tonumber(ARGV[i])
  if v == nil or v ~= v or v < lo or v > hi or math.floor(v) ~= v then bad(name) end
  return v
end

local function arg_id(i, name)
  local v = ARGV[i]
  if v == nil or #v == 0 or #v > 128 or string.find(v, '|', 1, true) then bad(name) end
  return v
end

local CHANNEL = ARGV[1]
local OWNER = ARGV[2] or ''
if CHANNEL == nil or #CHANNEL == 0 then bad('channel') end
if string.find(OWNER, '|', 1, true) then bad('owner') end
local FIELDS = {'capacity', 'max_queue_length', 'admit_ms', 'stall_ms', 'resume_ms', 'wait_ms',
                'max_connections', 'resume_tail', 'egress_budget', 'min_rate'}
-- (each stays below 1e14: cjson writes numbers with 14 significant digits)
local LOWS = {1, 1, 1, 1, 1, 1, 1, 1, 0, 1}
local LIMITS = {1e9, 1e12, MAX_MS, MAX_MS, MAX_MS, MAX_MS, 1e6, 1e12, 1e13, 1e13}
local ARG = 2 + #FIELDS
local MODES = {open = true, paused = true, draining = true}
local SEED, SETTINGS, missing = {}, {}, false
do
  local stored = redis.call('HMGET', CFG, FIELDS[1], FIELDS[2], FIELDS[3], FIELDS[4], FIELDS[5],
    FIELDS[6], FIELDS[7], FIELDS[8], FIELDS[9], FIELDS[10], 'mode')
  for n = 1, #FIELDS do
    SEED[n] = arg_int(2 + n, LOWS[n], LIMITS[n], FIELDS[n])
    SETTINGS[FIELDS[n]] = tonumber(stored[n]) or SEED[n]
    if not stored[n] then missing = true end
  end
  SETTINGS.mode = MODES[stored[#FIELDS + 1]] and stored[#FIELDS + 1] or 'open'
end
local CAPACITY, MAX_LEN, ADMIT_MS, STALL_MS, RESUME_MS, WAIT_MS, MAX_CONNS, TAIL, MODE, BUDGET, MIN_RATE
-- the rules every step below follows (configure.lua calls it again after changing them)
local function follow_settings()
  CAPACITY, MAX_LEN = SETTINGS.capacity, SETTINGS.max_queue_length
  ADMIT_MS, STALL_MS, RESUME_MS = SETTINGS.admit_ms, SETTINGS.stall_ms, SETTINGS.resume_ms
  WAIT_MS, MAX_CONNS, TAIL = SETTINGS.wait_ms, SETTINGS.max_connections, SETTINGS.resume_tail
  MODE = SETTINGS.mode
  BUDGET, MIN_RATE = SETTINGS.egress_budget, SETTINGS.min_rate
end
follow_settings()

local t = redis.call('TIME')
local NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  + tonumber(redis.call('HGET', C, 'skew') or 0)

-- what this call changed, published once by publish()
local admitted, removed = {}, {}
local changed = false
local rebind = false
local more = false          -- reclaiming stopped at the budget: another call should follow

local function get_info(id)
  local raw = redis.call('HGET', I, id)
  if raw then return cjson.decode(raw) end
  return nil
end

local function put_info(id, info)
  redis.call('HSET', I, id, cjson.encode(info))
end

local function journal(id, event, info, extra)
  local fields = {'t', id, 'event', event, 'ts', NOW, 'file', info.f or 0}
  for _, v in ipairs(extra or {}) do fields[#fields + 1] = v end
  redis.call('XADD', J, 'MAXLEN', '~', 1000000, '*', unpack(fields))  -- at most 16 values
end

-- running totals for metrics: a few HINCRBYs per event, whatever the size of the line
local function bump(field, n)
  redis.call('HINCRBY', ST, field, n or 1)
end

-- the last hour, one slot per minute (a slot is reset when its minute comes round again)
local function per_minute(kind, n)
  local minute = math.floor(NOW / 60000)
  local slot = minute % 60
  if tonumber(redis.call('HGET', ST, 'm' .. slot)) ~= minute then
    redis.call('HSET', ST, 'm' .. slot, minute, 'mb' .. slot, 0, 'ma' .. slot, 0)
  end
  redis.call('HINCRBY', ST, kind .. slot, n)
end

-- bytes the clients acknowledged over the last seconds, from every host, one slot per second (a
-- slot is reset when its second comes round again): what the admin page and metrics show
local EGRESS_SLOTS, EGRESS_WINDOW = 8, 3
local function per_second(n)
  local second = math.floor(NOW / 1000)
  local slot = second % EGRESS_SLOTS
  if tonumber(redis.call('HGET', ST, 's' .. slot)) ~= second then
    redis.call('HSET', ST, 's' .. slot, second, 'sb' .. slot, 0)
  end
  redis.call('HINCRBY', ST, 'sb' .. slot, n)
end

-- bytes/s over the last EGRESS_WINDOW whole seconds (a host that stops reporting stops counting)
local function egress()
  local second = math.floor(NOW / 1000)
  local fields = {}
  for k = 1, EGRESS_WINDOW do
    fields[#fields + 1] = 's' .. (second - k) % EGRESS_SLOTS
    fields[#fields + 1] = 'sb' .. (second - k) % EGRESS_SLOTS
  end
  local got = redis.call('HMGET', ST, unpack(fields))  -- 2 * EGRESS_WINDOW fields
  local bytes = 0
  for k = 1, EGRESS_WINDOW do
    if tonumber(got[2 * k - 1]) == second - k then bytes = bytes + tonumber(got[2 * k] or 0) end
  end
  return bytes / EGRESS_WINDOW
end

-- what a running download counts for against the egress budget (info.cr, bytes/s; their sum is
-- counters.committed): MIN_RATE until its throughput is measured, then what its client takes,
-- capped at MIN_RATE (a faster one gives way under the hosts' max-min shares), 0 while paused or
-- after it ended. Only kept while a budget is set; always given back.
local function commit(info, rate)
  if BUDGET <= 0 and rate > 0 then rate = 0 end
  rate = math.floor(rate)
  local delta = rate - (info.cr or 0)
  if delta ~= 0 then redis.call('HINCRBY', C, 'committed', delta) end
  info.cr = rate
end

-- how many downloads may run now: the capacity, and with an egress budget only as many as leave
-- room for one more at MIN_RATE beside what the running ones count for
local function admit_limit(active)
  if BUDGET <= 0 then return CAPACITY end
  local committed = tonumber(redis.call('HGET', C, 'committed') or 0)
  local room = math.floor((BUDGET - committed) / MIN_RATE)
  return math.min(CAPACITY, active + math.max(0, room))
end

-- a duration into a histogram (bucket upper bounds in seconds; metrics.py names the same ones)
local BUCKETS = {1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600}
local function observe(name, ms)
  local i = #BUCKETS + 1
  for n = 1, #BUCKETS do
    if ms <= BUCKETS[n] * 1000 then i = n break end
  end
  bump(name .. '_b' .. i)
  bump(name .. '_sum', math.max(0, ms))
  bump(name .. '_n')
end

local function count(tbl)
  local n = 0
  for _ in pairs(tbl or {}) do n = n + 1 end
  return n
end

-- forget every process's hold on a token (its streams and its connections)
local function unbind_all(id, info)
  for owner in pairs(info.o or {}) do redis.call('ZREM', H, owner .. '|w|' .. id) end
  for conn, owner in pairs(info.c or {}) do
    if owner ~= '' then redis.call('ZREM', H, owner .. '|d|' .. id .. '|' .. conn) end
  end
  info.o, info.c = nil, nil
end

-- drop a waiter from the line (reason: left, lapsed, expired, removed)
local function drop_waiter(id, reason)
  local seq = redis.call('ZSCORE', W, id)
  if seq then
    bump('dropped_' .. reason)
    redis.call('ZREM', W, id)
    removed[#removed + 1] = tonumber(seq)
    changed = true
  end
  local info = get_info(id)
  if info then unbind_all(id, info) end
  redis.call('ZREM', P, id)
  redis.call('ZREM', E, id)
  redis.call('HDEL', I, id)
end

-- free an admitted token's slot and write its outcome to the journal
local function release(id, info, outcome)
  unbind_all(id, info)
  commit(info, 0)
  redis.call('ZREM', A, id)
  redis.call('HDEL', I, id)
  journal(id, 'finished', info, {'outcome', outcome, 'bytes', info.b or 0})
  bump('outcome_' .. outcome)
  if info.st then observe('download', NOW - info.st) end
  changed = true
end

-- a token leaves the line or gives its slot back (reason: left | removed); returns its info
-- as it was (nil when the queue does not know it)
local function take_out(id, reason)
  local info = get_info(id)
  if info then
    if info.s == 'waiting' then drop_waiter(id, reason) else release(id, info, reason) end
  end
  return info
end

-- the client has every byte: spend the token, keep a bounded tail resumable for the grace
local function complete(id, info)
  redis.call('ZADD', S, info.e or NOW, id)
  redis.call('HSET', D, id, cjson.encode({u = NOW + RESUME_MS, r = math.min(TAIL, info.z or 0)}))
  release(id, info, 'completed')
end

-- a token out of the line for good: 'spent' (completed) or 'removed' (by an operator), with its
-- done entry; nil when neither
local function ended(id)
  if not redis.call('ZSCORE', S, id) then return nil, nil end
  local raw = redis.call('HGET', D, id)
  local done = raw and cjson.decode(raw)
  if done and done.x == 1 then return 'removed', done end
  return 'spent', done
end

local function covered(info)
  local ranges = info.r or {}
  return (info.z or 0) == 0 or (#ranges == 1 and ranges[1][1] == 0 and ranges[1][2] >= info.z)
end

-- sort and merge byte ranges {first, end}; a client asking for scattered ranges keeps at most
-- 64 of them (the rules below still decide)
local function merge_ranges(ranges)
  table.sort(ranges, function(x, y) return x[1] < y[1] end)
  local merged = {}
  for _, r in ipairs(ranges) do
    local top = merged[#merged]
    if top and r[1] <= top[2] then
      if r[2] > top[2] then top[2] = r[2] end
    elseif #merged < 64 then
      merged[#merged + 1] = {r[1], r[2]}
    end
  end
  return merged
end

-- bytes this token's connections were asked for but closed without (info.w) and that no
-- connection has since delivered; forgets what was delivered, true while any remain
local function owed(info)
  local left = {}
  for _, w in ipairs(info.w or {}) do
    local delivered = false
    for _, r in ipairs(info.r or {}) do
      if r[1] <= w[1] and w[2] <= r[2] then delivered = true end
    end
    if not delivered then left[#left + 1] = w end
  end
  info.w = nil
  if #left > 0 then info.w = left end
  return #left > 0
end

-- after a download's connections changed: complete it, pause it, or keep it running
local function settle(id, info)
  local open = count(info.c)
  if covered(info) or (info.t == 1 and open == 0 and not owed(info)) then
    complete(id, info)
    return 'complete'
  end
  if open == 0 then
    info.s = 'paused'
    commit(info, 0)
    redis.call('ZADD', A, NOW + RESUME_MS, id)
  else
    info.s = 'downloading'
    redis.call('ZADD', A, NOW + STALL_MS, id)
  end
  put_info(id, info)
  if open == 0 then return 'paused' end
  return 'ok'
end

local function expired_outcome(info)
  if info.s == 'admitted' then return 'no_show' end
  if info.s == 'downloading' then return 'stalled' end
  return 'abandoned'
end

-- a dead process's hold on one waiter or connection ends as of its last sign of life
local function unbind_member(member, owner, last)
  redis.call('ZREM', H, member)
  local kind, rest = string.match(member, '^[^|]*|(%a)|(.*)$')
  local id, conn = rest, nil
  if kind == 'd' then id, conn = string.match(rest, '^([^|]*)|(.*)$') end
  local info = id and get_info(id)
  if not info then return end
  if kind == 'w' and info.o and info.o[owner] then
    info.o[owner] = nil
    if next(info.o) == nil then
      info.o = nil
      if info.s == 'waiting' then redis.call('ZADD', P, last + WAIT_MS, id) end
    end
    put_info(id, info)
  elseif kind == 'd' and info.c and info.c[conn] == owner then
    info.c[conn] = nil
    if info.k and info.k[conn] then
      info.k[conn] = nil
      info.t = 1  -- it had handed everything to its kernel, which delivers it after the process
    end
    settle(id, info)
  end
end

-- processes that stopped showing signs of life lose what they held, ``budget`` items at most
local function reap_owners(budget)
  local dead = redis.call('ZRANGEBYSCORE', O, '-inf', NOW - OWNER_TTL, 'WITHSCORES',
    'LIMIT', 0, OWNER_BATCH)
  for n = 1, #dead, 2 do
    if budget <= 0 then break end
    local owner, score = dead[n], tonumber(dead[n + 1])
    local last = math.abs(score)
    if score > 0 then redis.call('ZADD', O, -last, owner) end
    local members = redis.call('ZRANGEBYLEX', H, '[' .. owner .. '|', '[' .. owner .. '|\255',
      'LIMIT', 0, budget)
    for _, member in ipairs(members) do unbind_member(member, owner, last) end
    if #members < budget then redis.call('ZREM', O, owner) end
    budget = budget - #members
  end
  return budget
end

-- reclaim what ran out (leases, dead processes' holds, lapsed places, expired tokens, spent
-- tokens past their expiry): BATCH items per call at most; ``more`` tells the caller to call again
local function reap()
  local budget = BATCH
  local function due(key)
    if budget <= 0 then return {} end
    local ids = redis.call('ZRANGEBYSCORE', key, '-inf', NOW, 'LIMIT', 0, budget)
    budget = budget - #ids
    return ids
  end
  for _, id in ipairs(due(A)) do
    local info = get_info(id) or {}
    release(id, info, expired_outcome(info))
  end
  if budget > 0 then budget = reap_owners(budget) end
  for _, id in ipairs(due(P)) do drop_waiter(id, 'lapsed') end
  for _, id in ipairs(due(E)) do drop_waiter(id, 'expired') end
  for _, id in ipairs(due(S)) do
    redis.call('ZREM', S, id)
    redis.call('HDEL', D, id)
  end
  more = budget <= 0
end

-- the first writes of every writing script: seed settings, birth the epoch, show this
-- process alive (telling it when it had been given up for dead), then reclaim
local function begin()
  if missing then
    for n = 1, #FIELDS do redis.call('HSETNX', CFG, FIELDS[n], SEED[n]) end
  end
  redis.call('HSETNX', C, 'epoch', NOW)
  if OWNER ~= '' then
    local score = tonumber(redis.call('ZSCORE', O, OWNER))
    if score == nil or score < 0 then rebind = true end
    redis.call('ZADD', O, NOW, OWNER)
  end
  reap()
end

local function admit(head, seq, info)
  unbind_all(head, info)
  redis.call('ZREM', W, head)
  redis.call('ZREM', P, head)
  redis.call('ZREM', E, head)
  removed[#removed + 1] = seq
  info.s = 'admitted'
  info.a = NOW
  commit(info, MIN_RATE)
  put_info(head, info)
  redis.call('ZADD', A, NOW + ADMIT_MS, head)
  redis.call('LPUSH', R, NOW)
  redis.call('LTRIM', R, 0, RATE_WINDOW - 1)
  journal(head, 'admitted', info, {'joined', info.j or NOW, 'client', info.ip or '', 'seq', seq})
  bump('admissions')
  per_minute('ma', 1)
  observe('wait', NOW - (info.j or NOW))
  admitted[#admitted + 1] = head
  changed = true
end

-- admit from the head of the line while a slot is free (at most BATCH steps per call); a
-- paused line admits no one
local function fill()
  if MODE == 'paused' then return end
  for step = 1, BATCH + 1 do
    if step > BATCH then more = true break end
    local active = redis.call('ZCARD', A)
    if active >= CAPACITY or (BUDGET > 0 and active >= admit_limit(active)) then break end
    local first = redis.call('ZRANGE', W, 0, 0, 'WITHSCORES')
    local head, seq = first[1], tonumber(first[2])
    if not head then break end
    local info = get_info(head) or {}
    if (info.e or 0) <= NOW then drop_waiter(head, 'expired') else admit(head, seq, info) end
  end
end

-- a waiter is seen: held by this process's stream, or (no stream) its presence renewed
local function attend(id, info)
  if OWNER ~= '' then
    info.o = info.o or {}
    if not info.o[OWNER] then
      info.o[OWNER] = 1
      redis.call('ZADD', H, 0, OWNER .. '|w|' .. id)
    end
    redis.call('ZREM', P, id)
  elseif info.o == nil then
    redis.call('ZADD', P, NOW + WAIT_MS, id)
  end
  put_info(id, info)
end

-- admissions per second over the recent window, and the window's length in seconds (it runs to
-- now, so a silence lowers the rate); 0 when unknown: fewer than two, or a window under a second
local function rate()
  local n = redis.call('LLEN', R)
  if n < 2 then return 0, 0 end
  local newest = tonumber(redis.call('LINDEX', R, 0))
  local oldest = tonumber(redis.call('LINDEX', R, n - 1))
  local span = math.max(NOW, newest) - oldest
  if span < 1000 then return 0, 0 end
  return (n - 1) * 1000 / span, span / 1000
end

-- when each slot should free (seconds from now, ascending) and how long a download takes on
-- average (seconds, -1 unknown), for the ETA: a running download's remaining bytes at its own
-- recent throughput (progress.lua's info.tp); one not yet measured takes the average. Worked out
-- only while someone waits (or would) and the slots are few enough (SCHEDULE_SLOTS) to read each:
-- with more, the admission rate is the better-informed figure anyway.
local SCHEDULE_SLOTS = 16
-- set by the scripts whose replies feed ETAs (join, status, summary, reap: every process's hub
-- refreshes its line from its once-a-second reap); the others skip the reads
local WITH_SCHEDULE = false
local function schedule()
  local done = redis.call('HMGET', ST, 'download_sum', 'download_n')
  local cycle = -1
  if tonumber(done[2] or 0) > 0 then cycle = tonumber(done[1]) / tonumber(done[2]) / 1000 end
  local slots, unknown, projected, measured = {}, 0, 0, 0
  for _, id in ipairs(redis.call('ZRANGE', A, 0, SCHEDULE_SLOTS - 1)) do
    local info = get_info(id)
    if info and info.st and (info.b or 0) > 0 and NOW > info.st then
      local speed = (info.tp and info.tp > 0) and info.tp or info.b * 1000 / (NOW - info.st)
      local left = math.max(0, (info.z or 0) - info.b) / speed
      slots[#slots + 1] = left
      projected = projected + (NOW - info.st) / 1000 + left
      measured = measured + 1
    else
      unknown = unknown + 1
    end
  end
  -- no download finished yet: the running ones' projected durations stand in for the average
  if cycle < 0 and measured > 0 then cycle = projected / measured end
  for _ = 1, unknown do slots[#slots + 1] = cycle end
  table.sort(slots)
  return slots, cycle
end

local function snapshot()
  local waiting = redis.call('ZCARD', W)
  local r, span = rate()
  local active = redis.call('ZCARD', A)
  local slots, cycle = nil, -1
  if WITH_SCHEDULE and (waiting > 0 or active >= CAPACITY) and active <= SCHEDULE_SLOTS then
    slots, cycle = schedule()
  end
  local egress_rate, limit = nil, nil
  if BUDGET > 0 then
    egress_rate = egress()
    limit = admit_limit(active)
  end
  return {
    now = NOW,
    waiting = waiting,
    active = active,
    egress = egress_rate,
    limit = limit,
    capacity = CAPACITY,
    mode = MODE,
    rate = r,
    rate_span = span,
    slots = slots,
    cycle = cycle,
    version = tonumber(redis.call('HGET', C, 'version') or 0),
    epoch = tonumber(redis.call('HGET', C, 'epoch') or 0),
  }
end

-- one event per call that changed the line: who was admitted, which places were freed
local function publish()
  local snap = snapshot()
  if changed then
    snap.version = redis.call('HINCRBY', C, 'version', 1)
    snap.admitted = admitted
    snap.removed = removed
    redis.call(PUBLISH, CHANNEL, cjson.encode(snap))
  end
  return snap
end

local function position(id)
  local rank = redis.call('ZRANK', W, id)
  if rank then return rank + 1 end
  return nil
end

-- the reply of a script: the snapshot, the queue's settings, plus this token's own view
local function reply(snap, fields)
  for k, v in pairs(fields) do snap[k] = v end
  if #admitted == 0 then snap.admitted = nil end
  if #removed == 0 then snap.removed = nil end
  snap.settings = SETTINGS
  if rebind then snap.rebind = true end
  if more then snap.more = true end
  return cjson.encode(snap)
end
