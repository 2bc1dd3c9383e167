-- reclaim.lua: what ran out is reclaimed (leases, dead processes' holds, lapsed places, expired
-- tokens, spent tokens past their expiry), RECLAIM_BATCH items per call at most; and begin(),
-- the first writes of every writing script.
--- @include "downloads"

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
      if info.s == STATE.WAITING then redis.call('ZADD', P, last + WAIT_MS, id) end
    end
    put_info(id, info)
  elseif kind == 'd' and info.c and info.c[conn] == owner then
    drop_connection(info, conn)
    settle(id, info)
  end
end

-- a download whose lease ran out while every open connection of it belonged to a process that
-- stopped showing signs of life (not reaped yet) did not stall: its connections end as that
-- process's do when it is reaped (then it is paused or complete); false for any other
local function ended_by_dead_owners(id, info)
  if info.s ~= STATE.DOWNLOADING or next(info.c or {}) == nil then return false end
  for _, owner in pairs(info.c) do
    local seen = owner ~= '' and tonumber(redis.call('ZSCORE', O, owner))
    if seen == false or (seen and seen > NOW - OWNER_TTL) then return false end
  end
  for conn, owner in pairs(info.c) do
    redis.call('ZREM', H, owner .. '|d|' .. id .. '|' .. conn)
    drop_connection(info, conn)
  end
  settle(id, info)
  return true
end

-- processes that stopped showing signs of life lose what they held, ``budget`` items at most;
-- their waiters' grace counts from their last sign of life, or from when the queue was ``heard``
-- again if it was unreachable since
local function reap_owners(budget, heard)
  local dead = redis.call('ZRANGEBYSCORE', O, '-inf', NOW - OWNER_TTL, 'WITHSCORES', 'LIMIT', 0, OWNER_BATCH)
  for n = 1, #dead, 2 do
    if budget <= 0 then break end
    local owner, score = dead[n], tonumber(dead[n + 1])
    local last = math.max(math.abs(score), heard)
    if score > 0 then redis.call('ZADD', O, -last, owner) end  -- negative: being reaped
    local members = redis.call('ZRANGEBYLEX', H, '[' .. owner .. '|', '[' .. owner .. '|\255', 'LIMIT', 0, budget)
    for _, member in ipairs(members) do unbind_member(member, owner, last) end
    if #members < budget then redis.call('ZREM', O, owner) end
    budget = budget - #members
  end
  return budget
end

-- reclaim in order: leases, dead processes' holds, lapsed places, expired tokens, spent tokens;
-- ``more`` tells the caller to call again. For OWNER_TTL after the queue was ``heard`` again
-- (see begin) nothing is reclaimed for silence, only what expired by the clock
local function reap(heard)
  local budget = RECLAIM_BATCH
  local quiet = NOW < heard + OWNER_TTL
  local function due(key)
    if budget <= 0 or (quiet and key ~= E and key ~= S) then return {} end  -- E, S: by the clock alone
    local ids = redis.call('ZRANGEBYSCORE', key, '-inf', NOW, 'LIMIT', 0, budget)
    budget = budget - #ids
    return ids
  end
  for _, id in ipairs(due(A)) do
    local info = get_info(id) or {}
    if not ended_by_dead_owners(id, info) then
      local outcome = expired_outcome(info)
      release(id, info, outcome)
      if outcome == OUTCOME.NO_SHOW then remember(id, info, STATE.MISSED) end
    end
  end
  if budget > 0 and not quiet then budget = reap_owners(budget, heard) end
  for _, id in ipairs(due(P)) do
    local info = get_info(id)
    if info and not info.aw and AWAY_MS > 0 then
      go_away(id, info)
    else
      drop_waiter(id, DROP.LAPSED)
      if info then remember(id, info, STATE.LAPSED) end
    end
  end
  for _, id in ipairs(due(E)) do drop_waiter(id, DROP.EXPIRED) end
  for _, id in ipairs(due(S)) do
    redis.call('ZREM', S, id)
    redis.call('HDEL', D, id)
  end
  more = budget <= 0
end

-- seed the settings, birth the epoch, show this process alive (telling it when it had been
-- given up for dead), then reclaim. Every process calls each second: when the latest sign of
-- life of any is older than QUIET, none could reach the queue (a failover, a restart of Redis, a
-- network cut) or all were down; the first call heard since (any call: a client's poll may come
-- first) starts a grace of OWNER_TTL (C's 'heard'), in which the silence is held against no one:
-- the processes reconnect one by one, their clients come back to start, resume and poll
local function begin()
  if missing then
    for n = 1, #FIELDS do redis.call('HSETNX', CFG, FIELDS[n], SEED[n]) end
  end
  redis.call('HSETNX', C, 'epoch', NOW)
  local heard = tonumber(redis.call('HGET', C, 'heard') or 0)
  local latest = tonumber(redis.call('ZRANGE', O, -1, -1, 'WITHSCORES')[2] or 0)
  if latest > heard and NOW - latest > QUIET then
    heard = NOW
    redis.call('HSET', C, 'heard', NOW)
  end
  if OWNER ~= '' then
    local score = tonumber(redis.call('ZSCORE', O, OWNER))
    if score == nil or score < 0 then rebind = true end
    redis.call('ZADD', O, NOW, OWNER)
  end
  reap(heard)
end
