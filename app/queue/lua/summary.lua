-- summary.lua: the line as a newcomer sees it (read only: no reaping, no writes).
-- KEYS and ARGV[1..ARG]: see lib.lua.
-- Returns JSON: the snapshot (now, waiting, active, capacity, rate, version, epoch) and settings.
WITH_SCHEDULE = true  -- the reply feeds ETAs
return reply(snapshot(), {})
