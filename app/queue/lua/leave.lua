-- leave.lua: give back a place in line or an admitted slot.
-- KEYS, ARGV[1..ARG]: see includes/args.lua and includes/settings.lua.
-- ARGV[ARG + 1] token id
-- Returns JSON: the snapshot plus state = the token's STATE before leaving (none if unknown).
-- The freed slot goes to the next waiter in the same call.
--- @include "reclaim"
--- @include "admission"
--- @include "reply"
local id = arg_id(ARG + 1, 'token id')
begin()
local info = take_out(id, DROP.LEFT)
local state = info and info.s or STATE.NONE
fill()
return reply(publish(), {state = state})
