-- holds.lua: which processes hold a token (held ZSET H, scored 0, by lex): "owner|w|token" for
-- a waiter held by that process's stream, "owner|d|token|conn" for a download connection it
-- serves. A process that stops showing signs of life loses them (reclaim.lua).
--- @include "records"
--- @include "settings"
--- @include "clock"
--- @include "away"

-- forget every process's hold on a token (its streams and its connections)
local function unbind_all(id, info)
  for owner in pairs(info.o or {}) do redis.call('ZREM', H, owner .. '|w|' .. id) end
  for conn, owner in pairs(info.c or {}) do
    if owner ~= '' then redis.call('ZREM', H, owner .. '|d|' .. id .. '|' .. conn) end
  end
  info.o, info.c, info.n = nil, nil, nil
end

-- a waiter is seen: held by the calling process's stream, or (no stream) its presence renewed
local function attend(id, info)
  come_back(id, info)
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
