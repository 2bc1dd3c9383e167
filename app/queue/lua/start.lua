-- start.lua: a download connection opens for an admitted token.
-- KEYS and ARGV[1..4]: see lib.lua.
-- ARGV[5] token id   ARGV[6] connection id   ARGV[7] max connections per token
-- ARGV[8] stall timeout (ms): the lease a running download gets, renewed by progress.lua
-- Returns JSON: the snapshot plus state =
--   ok (slot held, lease renewed) | waiting (with position) | too_many | spent | none.
local id, conn, max_conns, stall = ARGV[5], ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])
reap()
fill()
local info = get_info(id)
local state
if not info then
  state = redis.call('ZSCORE', S, id) and 'spent' or 'none'
elseif info.s == 'waiting' then
  state = 'waiting'
else
  local conns, open = {}, 0
  for cid, deadline in pairs(info.c or {}) do
    if deadline > NOW then conns[cid] = deadline; open = open + 1 end
  end
  if open >= max_conns then
    state = 'too_many'
  else
    conns[conn] = NOW + stall
    info.c = conns
    if not info.st then
      info.st = NOW
      journal(id, 'started', info, {})
    end
    info.s = 'downloading'
    put_info(id, info)
    redis.call('ZADD', A, NOW + stall, id)
    state = 'ok'
  end
end
return reply(publish(), {state = state, position = position(id)})
