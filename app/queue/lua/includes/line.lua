-- line.lua: a token leaves the line or gives its slot back, and what is left of it afterwards.
--- @include "records"
--- @include "holds"
--- @include "journal"
--- @include "stats"
--- @include "egress"
--- @include "changes"
--- @include "prequeue"

-- the place a record held counts no more against its client (records.lua: h)
local function free_place(info)
  if not info.h then return end
  if redis.call('ZINCRBY', PL, -1, info.h) + 0 <= 0 then redis.call('ZREM', PL, info.h) end
end

-- drop a waiter from the line or its file's pre-queue (reason: a DROP)
local function drop_waiter(id, reason)
  local seq = redis.call('ZSCORE', W, id)
  if seq then
    bump('dropped_' .. reason)
    redis.call('ZREM', W, id)
    removed[#removed + 1] = tonumber(seq)
    changed = true
  end
  local info = get_info(id)
  if info then
    unbind_all(id, info)
    free_place(info)
    if info.pq then unqueue(id, info) end
  end
  redis.call('ZREM', AW, id)
  redis.call('ZREM', P, id)
  redis.call('ZREM', E, id)
  redis.call('HDEL', I, id)
end

-- free an admitted token's slot and write its outcome (an OUTCOME) to the journal
local function release(id, info, outcome)
  unbind_all(id, info)
  free_place(info)
  commit(info, 0)
  redis.call('ZREM', A, id)
  redis.call('HDEL', I, id)
  journal(id, EVENT.FINISHED, info, {'outcome', outcome, 'bytes', info.b or 0, 'resent', resent(info)})
  bump('outcome_' .. outcome)
  if info.st then observe('download', NOW - info.st) end
  changed = true
end

-- a token leaves the line or gives its slot back (reason: LEFT or REMOVED, a word both DROP and
-- OUTCOME have); returns its record as it was (nil when the queue does not know it)
local function take_out(id, reason)
  local info = get_info(id)
  if info then
    if info.s == STATE.WAITING then drop_waiter(id, reason) else release(id, info, reason) end
  end
  return info
end

-- the client has every byte: spend the token, keep a bounded tail resumable for the grace
local function complete(id, info)
  redis.call('ZADD', S, info.e or NOW, id)
  redis.call('HSET', D, id, cjson.encode({u = NOW + RESUME_MS, r = math.min(TAIL, info.z or 0)}))
  release(id, info, OUTCOME.COMPLETED)
end

-- a token out of the line for good: STATE.SPENT (completed), STATE.REMOVED (by an operator),
-- STATE.LAPSED or STATE.MISSED (away.lua), with its done entry; nil when none
local function ended(id)
  if not redis.call('ZSCORE', S, id) then return nil, nil end
  local raw = redis.call('HGET', D, id)
  local done = raw and cjson.decode(raw)
  if done and done.x == 1 then return STATE.REMOVED, done end
  if done and done.g then return done.g, done end
  return STATE.SPENT, done
end
