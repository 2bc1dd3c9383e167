-- unbind.lua: this process's stream of a waiter closed; its wait grace starts now unless
-- another process's stream still holds it.
-- KEYS, ARGV[1..ARG]: see includes/args.lua and includes/settings.lua (ARGV[2] must name the process).
-- ARGV[ARG + 1] token id
-- Returns JSON: the snapshot plus state = the token's state (none if unknown).
--- @include "reclaim"
--- @include "admission"
--- @include "reply"
local id = arg_id(ARG + 1, 'token id')
if OWNER == '' then bad('owner') end
begin()
local info = get_info(id)
local state = STATE.NONE
if info then
  state = info.s
  if info.o and info.o[OWNER] then
    info.o[OWNER] = nil
    redis.call('ZREM', H, OWNER .. '|w|' .. id)
    if next(info.o) == nil then info.o = nil end
    if info.o == nil and state == STATE.WAITING then redis.call('ZADD', P, NOW + WAIT_MS, id) end
    put_info(id, info)
  end
end
fill()
return reply(publish(), {state = state})
