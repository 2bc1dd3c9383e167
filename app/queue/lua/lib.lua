-- lib.lua: helpers prepended to every queue script (not a script by itself).
--
-- Every script receives the same KEYS, all sharing one {hash tag}:
--   KEYS[1] waiting   ZSET  token id -> join sequence number (FIFO order)
--   KEYS[2] presence  ZSET  waiting token id -> deadline (ms, Redis time) to come back by
--   KEYS[3] active    ZSET  admitted token id -> lease deadline (ms, Redis time)
--   KEYS[4] info      HASH  token id -> JSON state of a waiting or admitted token
--   KEYS[5] spent     ZSET  spent token id -> token expiry (ms)
--   KEYS[6] counters  HASH  seq (last join number), version (last published event),
--                           skew (ms added to Redis time; only tests set it, to move the clock)
--   KEYS[7] admits    LIST  Redis time (ms) of the most recent admissions, newest first
--   KEYS[8] journal   STREAM history events (admitted/started/finished) for the database
-- and the same leading ARGV:
--   ARGV[1] pub/sub channel for state-change events
--   ARGV[2] capacity (max admitted-or-downloading tokens)
--   ARGV[3] admit timeout (ms): an admitted token must start downloading within it
--   ARGV[4] resume grace (ms): an interrupted download keeps its slot this long
-- Script-specific ARGV start at ARGV[5].
local W, P, A, I, S, C, R, J = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local CHANNEL = ARGV[1]
local CAPACITY = tonumber(ARGV[2])
local ADMIT_MS = tonumber(ARGV[3])
local RESUME_MS = tonumber(ARGV[4])
local RATE_WINDOW = 32
local REAP_BATCH = 256

local t = redis.call('TIME')
local NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  + tonumber(redis.call('HGET', C, 'skew') or 0)

-- what this call changed, published once by publish()
local admitted, removed = {}, {}
local changed = false

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
  redis.call('XADD', J, 'MAXLEN', '~', 1000000, '*', unpack(fields))
end

-- drop a waiter from the line (left, lapsed, expired)
local function drop_waiter(id)
  local seq = redis.call('ZSCORE', W, id)
  if seq then
    redis.call('ZREM', W, id)
    removed[#removed + 1] = tonumber(seq)
    changed = true
  end
  redis.call('ZREM', P, id)
  redis.call('HDEL', I, id)
end

-- free an admitted token's slot and write its outcome to the journal
local function release(id, info, outcome)
  redis.call('ZREM', A, id)
  redis.call('HDEL', I, id)
  journal(id, 'finished', info, {'outcome', outcome, 'bytes', info.b or 0})
  changed = true
end

local function expired_outcome(info)
  if info.s == 'admitted' then return 'no_show' end
  if info.s == 'downloading' then return 'stalled' end
  return 'abandoned'
end

-- reclaim every lease and presence that ran out, whoever held it
local function reap()
  local leases = redis.call('ZRANGEBYSCORE', A, '-inf', NOW, 'LIMIT', 0, REAP_BATCH)
  for _, id in ipairs(leases) do
    local info = get_info(id) or {}
    release(id, info, expired_outcome(info))
  end
  local lapsed = redis.call('ZRANGEBYSCORE', P, '-inf', NOW, 'LIMIT', 0, REAP_BATCH)
  for _, id in ipairs(lapsed) do drop_waiter(id) end
  redis.call('ZREMRANGEBYSCORE', S, '-inf', NOW)
end

-- admit from the head of the line while a slot is free
local function fill()
  while redis.call('ZCARD', A) < CAPACITY do
    local first = redis.call('ZRANGE', W, 0, 0, 'WITHSCORES')
    local head, seq = first[1], tonumber(first[2])
    if not head then break end
    local info = get_info(head) or {}
    if (info.e or 0) <= NOW then
      drop_waiter(head)
    else
      redis.call('ZREM', W, head)
      redis.call('ZREM', P, head)
      removed[#removed + 1] = seq
      info.s = 'admitted'
      info.a = NOW
      put_info(head, info)
      redis.call('ZADD', A, NOW + ADMIT_MS, head)
      redis.call('LPUSH', R, NOW)
      redis.call('LTRIM', R, 0, RATE_WINDOW - 1)
      journal(head, 'admitted', info, {'joined', info.j or NOW, 'client', info.ip or '', 'seq', seq})
      admitted[#admitted + 1] = head
      changed = true
    end
  end
end

-- admissions per second over the recent window (0 when unknown)
local function rate()
  local n = redis.call('LLEN', R)
  if n < 2 then return 0 end
  local newest = tonumber(redis.call('LINDEX', R, 0))
  local oldest = tonumber(redis.call('LINDEX', R, n - 1))
  local span = math.max(NOW, newest) - oldest
  if span <= 0 then return 0 end
  return (n - 1) * 1000 / span
end

-- seconds until the first running download should finish, from its bytes so far (-1: unknown);
-- only worked out while the admission rate is still unknown
local function drain()
  local best = -1
  for _, id in ipairs(redis.call('ZRANGE', A, 0, -1)) do
    local info = get_info(id)
    if info and info.st and (info.b or 0) > 0 and NOW > info.st then
      local left = ((info.z or 0) - info.b) * (NOW - info.st) / info.b / 1000
      if best < 0 or left < best then best = left end
    end
  end
  return best
end

local function snapshot()
  local waiting, r = redis.call('ZCARD', W), rate()
  return {
    now = NOW,
    waiting = waiting,
    active = redis.call('ZCARD', A),
    capacity = CAPACITY,
    rate = r,
    drain = (r == 0 and waiting > 0) and drain() or -1,
    version = tonumber(redis.call('HGET', C, 'version') or 0),
  }
end

-- one event per call that changed the line: who was admitted, which places were freed
local function publish()
  local snap = snapshot()
  if changed then
    snap.version = redis.call('HINCRBY', C, 'version', 1)
    snap.admitted = admitted
    snap.removed = removed
    redis.call('PUBLISH', CHANNEL, cjson.encode(snap))
  end
  return snap
end

local function position(id)
  local rank = redis.call('ZRANK', W, id)
  if rank then return rank + 1 end
  return nil
end

-- the reply of a script: the snapshot plus this token's own view
local function reply(snap, fields)
  for k, v in pairs(fields) do snap[k] = v end
  if #admitted == 0 then snap.admitted = nil end
  if #removed == 0 then snap.removed = nil end
  return cjson.encode(snap)
end
