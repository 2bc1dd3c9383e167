-- touch.lua: renew the presence of waiters still connected (or detach one that left).
-- KEYS and ARGV[1..4]: see lib.lua (only KEYS[2] presence and KEYS[6] counters are used).
-- ARGV[5] grace (ms): each waiter must be seen again within it
-- ARGV[6..] token ids; ids no longer waiting are ignored (ZADD XX)
-- Returns JSON: the snapshot (its version tells a caller whether it missed events).
local grace = tonumber(ARGV[5])
local args = {}
for i = 6, #ARGV do
  args[#args + 1] = NOW + grace
  args[#args + 1] = ARGV[i]
end
if #args > 0 then redis.call('ZADD', P, 'XX', unpack(args)) end
return reply(snapshot(), {})
