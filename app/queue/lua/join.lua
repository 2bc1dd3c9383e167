-- join.lua: join the line, or re-attach to this token's existing place.
-- KEYS, ARGV[1..ARG]: see includes/args.lua and includes/settings.lua. A caller with an owner id
-- holds the waiter with its stream (no presence deadline while that process lives); one without
-- renews its presence.
-- ARGV[ARG + 1] token id     ARGV[ARG + 2] file id     ARGV[ARG + 3] file size (bytes)
-- ARGV[ARG + 4] token expiry (ms, Unix epoch)      ARGV[ARG + 5] client address (CLIENT_MAX)
-- Returns JSON: the snapshot plus state (a STATE: waiting, admitted, downloading, paused, spent,
--   removed, or the refusals expired, full, draining), position and seq (join number) when
--   waiting, joined = true when this call made the place.
-- Idempotent: a token already waiting keeps its place. A draining line takes no newcomers.
-- Admission of the head happens here too; an event is published only when someone was admitted
-- or dropped.
--- @include "reclaim"
--- @include "admission"
--- @include "reply"
WITH_SCHEDULE = true  -- the reply feeds ETAs
local id = arg_id(ARG + 1, 'token id')
local file_id = arg_int(ARG + 2, 0, MAX_INT, 'file id')
local size = arg_int(ARG + 3, 0, MAX_INT, 'file size')
local expires = arg_int(ARG + 4, 0, MAX_MS, 'token expiry')
local client = ARGV[ARG + 5] or ''
if #client > CLIENT_MAX then bad('client address') end
begin()

local state, joined
local info = get_info(id)
if info then
  state = info.s
  if state == STATE.WAITING then attend(id, info) end
elseif ended(id) then
  state = ended(id)
elseif expires <= NOW then
  state = STATE.EXPIRED
elseif QUEUE_MODE == MODE.DRAINING then
  state = STATE.DRAINING
elseif redis.call('ZCARD', W) >= MAX_LEN then
  state = STATE.FULL
else
  local seq = redis.call('HINCRBY', C, 'seq', 1)
  redis.call('ZADD', W, seq, id)
  redis.call('ZADD', E, expires, id)
  attend(id, {s = STATE.WAITING, j = NOW, e = expires, f = file_id, z = size, ip = client, q = seq})
  bump('joins')
  -- no event for a join alone: no one's place moves (the newcomer's reply is its news, and the
  -- line's length reaches the others with the next event or their process's reap); an event
  -- goes to every worker of every host, the largest Redis cost of a long line (docs/scaling.md)
  state = STATE.WAITING
  joined = true
end
fill()
local snap = publish()
info = get_info(id)
if info then state = info.s end
return reply(snap, {state = state, position = position(id), seq = info and info.q or nil, joined = joined})
