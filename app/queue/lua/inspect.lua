-- inspect.lua: what an operator sees (read only: no reaping, no writes).
-- KEYS, ARGV[1..ARG]: see includes/args.lua and includes/settings.lua.
-- ARGV[ARG + 1] how many running downloads to describe (0..MAX_INSPECT), soonest lease first
-- Returns JSON: the snapshot plus
--   stats = the stats hash as a flat list [field, value, ...] (a bounded number of fields),
--   downloads = [{id, state, file, client, bytes, size, joined, admitted, started, lease,
--                 connections}] (times in ms, Redis time),
--   holders = the TOP_HOLDERS clients holding the most places, flat [client, places, ...],
--   clients = how many clients hold a place.
--- @include "records"
--- @include "reply"
WITH_SCHEDULE = true  -- the reply feeds ETAs
local limit = arg_int(ARG + 1, 0, MAX_INSPECT, 'limit')
local downloads = {}
if limit > 0 then
  local ids = redis.call('ZRANGE', A, 0, limit - 1, 'WITHSCORES')
  for n = 1, #ids, 2 do
    local info = get_info(ids[n]) or {}
    downloads[#downloads + 1] = {
      id = ids[n], state = info.s or STATE.NONE, file = info.f or 0, client = info.ip or '',
      bytes = info.b or 0, size = info.z or 0, joined = info.j or 0, admitted = info.a or 0,
      started = info.st or 0, lease = tonumber(ids[n + 1]), connections = count(info.c),
    }
  end
end
return reply(snapshot(), {downloads = downloads, stats = redis.call('HGETALL', ST),
                         holders = redis.call('ZRANGE', PL, 0, TOP_HOLDERS - 1, 'REV', 'WITHSCORES'),
                         clients = redis.call('ZCARD', PL)})
