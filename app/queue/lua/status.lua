-- status.lua: the view of several tokens at once (resync after missed events, status polls).
-- KEYS and ARGV[1..4]: see lib.lua.
-- ARGV[5] grace (ms) to renew the presence of the waiters among them (0: read only)
-- ARGV[6..] token ids
-- Returns JSON: the snapshot plus tokens = {id: [state, position or 0, lease deadline or 0]},
--   state = waiting|admitted|downloading|paused|spent|none. Reaps and admits first.
local grace = tonumber(ARGV[5])
reap()
fill()
local snap = publish()
local tokens = {}
for i = 6, #ARGV do
  local id = ARGV[i]
  local info = get_info(id)
  if info then
    if info.s == 'waiting' and grace > 0 then redis.call('ZADD', P, NOW + grace, id) end
    tokens[id] = {info.s, position(id) or 0, tonumber(redis.call('ZSCORE', A, id) or 0)}
  elseif redis.call('ZSCORE', S, id) then
    tokens[id] = {'spent', 0, 0}
  else
    tokens[id] = {'none', 0, 0}
  end
end
return reply(snap, {tokens = tokens})
