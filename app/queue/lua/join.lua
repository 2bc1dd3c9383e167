-- join.lua: join the line, or re-attach to this token's existing place.
-- KEYS and ARGV[1..4]: see lib.lua.
-- ARGV[5] token id        ARGV[6] file id       ARGV[7] file size (bytes)
-- ARGV[8] token expiry (ms, Unix epoch)         ARGV[9] wait grace (ms)
-- ARGV[10] max queue length                     ARGV[11] client address
-- Returns JSON: the snapshot (now, waiting, active, capacity, rate, version) plus
--   state = waiting|admitted|downloading|paused|spent|expired|full,
--   position (when waiting), seq (join number, when waiting).
-- Idempotent: a token already waiting keeps its place (its presence is renewed);
-- an admitted token reports its state. Admission of the head happens here too.
local id = ARGV[5]
local file_id, size, expires = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local grace, max_len, client = tonumber(ARGV[9]), tonumber(ARGV[10]), ARGV[11]

reap()
local state
local info = get_info(id)
if info then
  state = info.s
  if state == 'waiting' then redis.call('ZADD', P, NOW + grace, id) end
elseif redis.call('ZSCORE', S, id) then
  state = 'spent'
elseif expires <= NOW then
  state = 'expired'
elseif redis.call('ZCARD', W) >= max_len then
  state = 'full'
else
  local seq = redis.call('HINCRBY', C, 'seq', 1)
  redis.call('ZADD', W, seq, id)
  redis.call('ZADD', P, NOW + grace, id)
  put_info(id, {s = 'waiting', j = NOW, e = expires, f = file_id, z = size, ip = client, q = seq})
  changed = true
  state = 'waiting'
end
fill()
local snap = publish()
info = get_info(id)
if info then state = info.s end
return reply(snap, {state = state, position = position(id), seq = info and info.q or nil})
