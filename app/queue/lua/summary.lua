-- summary.lua: the line as a newcomer sees it (read only).
-- KEYS and ARGV[1..4]: see lib.lua.
-- Returns JSON: the snapshot (now, waiting, active, capacity, rate, version).
return cjson.encode(snapshot())
