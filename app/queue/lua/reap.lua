-- reap.lua: reclaim expired leases and lapsed waiters, then admit into free slots.
-- KEYS and ARGV[1..4]: see lib.lua.
-- Returns JSON: the snapshot (with admitted ids and removed join numbers when it changed anything).
reap()
fill()
return reply(publish(), {})
