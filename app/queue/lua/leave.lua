-- leave.lua: give back a place in line or an admitted slot.
-- KEYS and ARGV[1..ARG]: see lib.lua.
-- ARGV[ARG + 1] token id
-- Returns JSON: the snapshot plus state = the token's state before leaving (none if unknown).
-- The freed slot goes to the next waiter in the same call.
local id = arg_id(ARG + 1, 'token id')
begin()
local info = take_out(id, 'left')
local state = info and info.s or 'none'
fill()
return reply(publish(), {state = state})
