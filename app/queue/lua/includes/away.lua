-- away.lua: a waiter whose presence stopped is away. It keeps its join number (in the away set
-- AW, out of the line W) for AWAY_MS but is never admitted meanwhile: the slot goes to the next
-- present waiter, so admission never looks at an away one, however many stand at the front.
-- Coming back (a stream, a join, a poll) puts it into the line again at its own join number,
-- ahead of everyone who joined after it. Positions count present waiters only: leaving for AW
-- is published as a removed join number, coming back as an added one (the hub's arithmetic).
-- A place that lapsed after its time away, or a turn that passed unused, is remembered (spent
-- set S and done hash D, as a completed token) until the token expires, so that its client
-- hears what happened instead of silently joining at the back.
--- @include "records"
--- @include "settings"
--- @include "stats"
--- @include "changes"

-- presence stopped: out of the line, into the away set, dropped at NOW + AWAY_MS (P)
local function go_away(id, info)
  local seq = redis.call('ZSCORE', W, id)
  if seq then
    redis.call('ZREM', W, id)
    redis.call('ZADD', AW, seq, id)
    removed[#removed + 1] = tonumber(seq)
    changed = true
  end
  info.aw = NOW
  put_info(id, info)
  redis.call('ZADD', P, NOW + AWAY_MS, id)
  bump('went_away')
end

-- seen again: back in the line at its own join number (the caller writes the record)
local function come_back(id, info)
  if not info.aw then return end
  info.aw = nil
  local seq = redis.call('ZSCORE', AW, id)
  if seq then
    redis.call('ZREM', AW, id)
    redis.call('ZADD', W, seq, id)
    added[#added + 1] = tonumber(seq)
    changed = true
  end
  bump('came_back')
end

-- what happened to a token that is out of the line without completing (STATE.LAPSED: away
-- for AWAY_MS; STATE.MISSED: its turn passed unused), kept until the token expires
local function remember(id, info, state)
  local expires = info.e or (NOW + REMOVED_TTL)
  if expires <= NOW then return end  -- an expired token's client hears that it expired
  redis.call('ZADD', S, expires, id)
  redis.call('HSET', D, id, cjson.encode({g = state}))
end
