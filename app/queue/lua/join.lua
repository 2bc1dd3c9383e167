-- join.lua: join the line, or re-attach to this token's existing place.
-- KEYS, ARGV[1..ARG]: see includes/args.lua and includes/settings.lua. A caller with an owner id
-- holds the waiter with its stream (no presence deadline while that process lives); one without
-- renews its presence.
-- ARGV[ARG + 1] token id     ARGV[ARG + 2] file id     ARGV[ARG + 3] file size (bytes)
-- ARGV[ARG + 4] token expiry (ms, Unix epoch)      ARGV[ARG + 5] client address (CLIENT_MAX)
-- ARGV[ARG + 6] the client its place counts against (HOLDER_MAX; '' exempt): at most MAX_PLACES
--   places (waiting or admitted) per client while MAX_PLACES > 0; counted whatever the cap, so
--   a cap set later is exact at once
-- ARGV[ARG + 7] the file's release time (ms; 0: none): before it, a newcomer waits in the file's
--   pre-queue (includes/prequeue.lua) with no position; at or after it, a newcomer first starts
--   a release that is due, so that it stands behind every pre-queued waiter
-- Returns JSON: the snapshot plus state (a STATE: waiting, admitted, downloading, paused, spent,
--   removed, or the refusals expired, full, draining, too_many_places), position and seq (join
--   number) when waiting (neither when pre-queued: release_at instead), joined = true when this call made the place, places (the client's
--   count) when it had too many.
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
local holder = ARGV[ARG + 6] or ''
if #holder > HOLDER_MAX then bad('holder') end
local release = arg_int(ARG + 7, 0, MAX_MS, 'release time')
begin()

local state, joined, held
if holder ~= '' then held = tonumber(redis.call('ZSCORE', PL, holder)) or 0 end
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
elseif redis.call('ZCARD', W) + redis.call('ZCARD', AW) + (tonumber(redis.call('HGET', PQ, 'all')) or 0) >= MAX_LEN then
  state = STATE.FULL
elseif held and MAX_PLACES > 0 and held >= MAX_PLACES then
  state = STATE.TOO_MANY_PLACES
  bump('refused_places')
else
  local record = {s = STATE.WAITING, j = NOW, e = expires, f = file_id, z = size, ip = client}
  local started = releasing(file_id)
  if release > NOW and not started then
    prequeue(id, record, release)
  else
    if redis.call('ZSCORE', RL, file_id) and not started then start_release(file_id) end
    record.q = redis.call('HINCRBY', C, 'seq', 1)
    redis.call('ZADD', W, record.q, id)
  end
  redis.call('ZADD', E, expires, id)
  if held then
    record.h = holder
    redis.call('ZINCRBY', PL, 1, holder)
  end
  attend(id, record)
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
local places = state == STATE.TOO_MANY_PLACES and held or nil
local prequeued = info and info.pq and tonumber(redis.call('ZSCORE', RL, info.f)) or nil
return reply(snap, {state = state, position = position(id), seq = info and info.q or nil, joined = joined,
                    places = places, release_at = prequeued})
