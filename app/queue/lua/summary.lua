-- summary.lua: the line as a newcomer sees it (read only: no reaping, no writes).
-- KEYS, ARGV[1..ARG]: see includes/args.lua and includes/settings.lua.
-- Returns JSON: the snapshot (now, waiting, active, capacity, rate, version, epoch) and settings.
--- @include "reply"
WITH_SCHEDULE = true  -- the reply feeds ETAs
return reply(snapshot(), {})
