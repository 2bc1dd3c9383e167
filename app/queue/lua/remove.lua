-- remove.lua: an operator takes a token out of the queue. A waiter loses its place; a download
-- loses its slot, which goes to the next waiter in the same call (its connections stop at
-- their next progress report, which answers gone). The token may not join or download again
-- until it expires (a day when the queue does not know its expiry).
-- KEYS, ARGV[1..ARG]: see includes/args.lua and includes/settings.lua.
-- ARGV[ARG + 1] token id
-- Returns JSON: the snapshot plus state = the token's state before (none if unknown).
--- @include "reclaim"
--- @include "admission"
--- @include "reply"
local id = arg_id(ARG + 1, 'token id')
begin()
local info = take_out(id, DROP.REMOVED)
local state = info and info.s or ended(id) or STATE.NONE
redis.call('ZADD', S, (info and info.e) or NOW + REMOVED_TTL, id)
redis.call('HSET', D, id, cjson.encode({u = 0, r = 0, x = 1}))
fill()
return reply(publish(), {state = state})
