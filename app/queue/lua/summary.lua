-- summary.lua: the line as a newcomer sees it (read only: no reaping, no writes).
-- KEYS, ARGV[1..ARG]: see includes/args.lua and includes/settings.lua.
-- Returns JSON: the snapshot (now, waiting, active, capacity, rate, version, epoch) and settings,
-- releases = [[file id, release time (ms), pre-queued waiters], ...]: the MAX_RELEASES scheduled
-- releases that have a pre-queue, soonest first.
--- @include "reply"
WITH_SCHEDULE = true  -- the reply feeds ETAs
local releases = {}
local scheduled = redis.call('ZRANGE', RL, 0, MAX_RELEASES - 1, 'WITHSCORES')
for n = 1, #scheduled, 2 do
  local waiting = tonumber(redis.call('HGET', PQ, scheduled[n] .. ':n')) or 0
  releases[#releases + 1] = {tonumber(scheduled[n]), tonumber(scheduled[n + 1]), waiting}
end
return reply(snapshot(), {releases = releases})
