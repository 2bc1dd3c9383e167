-- reap.lua: reclaim expired leases, lapsed waiters and dead processes' holds, then admit into
-- free slots. Called about once a second by every process: it is also that process's sign of
-- life, which keeps its streams' waiters and its download connections counted.
-- KEYS, ARGV[1..ARG]: see includes/args.lua and includes/settings.lua.
-- Returns JSON: the snapshot (with admitted ids and removed join numbers when it changed
-- anything; rebind = true when this process had been given up for dead; due = true when a
-- scheduled release is due: call release.lua).
--- @include "reclaim"
--- @include "admission"
--- @include "reply"
WITH_SCHEDULE = true  -- the reply feeds ETAs
begin()
fill()
return reply(publish(), {due = release_due() or nil})
