-- status.lua: the view of several tokens at once (resync after missed events, status polls).
-- KEYS and ARGV[1..ARG]: see lib.lua.
-- ARGV[ARG + 1] mode: read (no write but reaping) | renew (renew the presence of the waiters among
--          them: a poll counts as being seen) | hold (this process's streams hold them: resync)
-- ARGV[ARG + 2..] token ids, at most 1000
-- Returns JSON: the snapshot plus tokens = {id: [state, position or 0, lease deadline or 0,
--   bytes the client acknowledged so far, file size]},
--   state = waiting|admitted|downloading|paused|spent|removed|none. Reaps and admits first.
WITH_SCHEDULE = true  -- the reply feeds ETAs
local mode = ARGV[ARG + 1]
if mode ~= 'read' and mode ~= 'renew' and mode ~= 'hold' then bad('mode') end
if mode == 'hold' and OWNER == '' then bad('owner') end
if #ARGV - ARG - 1 > 1000 then bad('too many token ids') end
for n = ARG + 2, #ARGV do arg_id(n, 'token id') end
begin()
fill()
local snap = publish()
local tokens = {}
for n = ARG + 2, #ARGV do
  local id = ARGV[n]
  local info = get_info(id)
  if info then
    if info.s == 'waiting' and mode ~= 'read' then
      if mode == 'renew' and info.o == nil then
        redis.call('ZADD', P, NOW + WAIT_MS, id)
      elseif mode == 'hold' then
        attend(id, info)
      end
    end
    tokens[id] = {info.s, position(id) or 0, tonumber(redis.call('ZSCORE', A, id) or 0), info.b or 0,
      info.z or 0}
  elseif ended(id) then
    tokens[id] = {ended(id), 0, 0, 0, 0}
  else
    tokens[id] = {'none', 0, 0, 0, 0}
  end
end
return reply(snap, {tokens = tokens})
