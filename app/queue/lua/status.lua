-- status.lua: the view of several tokens at once (resync after missed events, status polls).
-- KEYS, ARGV[1..ARG]: see includes/args.lua and includes/settings.lua.
-- ARGV[ARG + 1] a STATUS_MODE: read (no write but reaping) | poll (renew the presence of the waiters
--          among them: a poll counts as being seen) | resync (this process's streams hold them again)
-- ARGV[ARG + 2..] token ids, at most MAX_STATUS_IDS
-- Returns JSON: the snapshot plus tokens = {id: [state, position or 0, lease deadline or 0,
--   bytes the client acknowledged so far, file size, join number or 0, the download's throughput
--   in bytes/s as the ETA times its slot (0: not measured yet)]} (a pre-queued waiter: waiting at
--   position 0 with join number 0),
--   state = waiting|admitted|downloading|paused|spent|removed|lapsed|missed|none. Reaps, renews
--   the presence it was asked to (an away waiter comes back), admits, then answers.
--- @include "reclaim"
--- @include "admission"
--- @include "holds"
--- @include "reply"
WITH_SCHEDULE = true  -- the reply feeds ETAs
local mode = ARGV[ARG + 1]
if mode ~= STATUS_MODE.READ and mode ~= STATUS_MODE.POLL and mode ~= STATUS_MODE.RESYNC then bad('mode') end
if mode == STATUS_MODE.RESYNC and OWNER == '' then bad('owner') end
if #ARGV - ARG - 1 > MAX_STATUS_IDS then bad('too many token ids') end
for n = ARG + 2, #ARGV do arg_id(n, 'token id') end
begin()
for n = ARG + 2, #ARGV do  -- first the presence the asking renews: one that came back may be admitted now
  local id = ARGV[n]
  local info = mode ~= STATUS_MODE.READ and get_info(id)
  if info and info.s == STATE.WAITING then
    if mode == STATUS_MODE.POLL and info.o == nil then
      come_back(id, info)
      put_info(id, info)
      redis.call('ZADD', P, NOW + WAIT_MS, id)
    elseif mode == STATUS_MODE.RESYNC then
      attend(id, info)
    end
  end
end
fill()
local snap = publish()
local tokens = {}
for n = ARG + 2, #ARGV do
  local id = ARGV[n]
  local info = get_info(id)
  if info then
    tokens[id] = {info.s, position(id) or 0, tonumber(redis.call('ZSCORE', A, id) or 0), info.b or 0,
      info.z or 0, info.q or 0, known_speed(info) and math.floor(info.tp) or 0}
  elseif ended(id) then
    tokens[id] = {ended(id), 0, 0, 0, 0}
  else
    tokens[id] = {STATE.NONE, 0, 0, 0, 0}
  end
end
return reply(snap, {tokens = tokens})
