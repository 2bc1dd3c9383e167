-- start.lua: a download connection opens for a token.
-- KEYS, ARGV[1..ARG]: see includes/args.lua and includes/settings.lua. The connection belongs to
-- the calling process: it counts as open until that process closes it or stops showing signs of
-- life.
-- ARGV[ARG + 1] token id   ARGV[ARG + 2] connection id   ARGV[ARG + 3] bytes the request asks for
-- ARGV[ARG + 4] the first byte it asks for (downloads.lua: resumed_at)
-- Returns JSON: the snapshot plus state (a REPLY, or a STATE) =
--   ok (slot held, lease renewed) | waiting (with position) | too_many | none
--   | tail (a completed token within its resume grace, asking for no more than its tail
--     budget left: served without a slot; the budget is charged now)
--   | spent (completed, and past its grace or its budget) | removed (by an operator).
--- @include "reclaim"
--- @include "admission"
--- @include "reply"
local id = arg_id(ARG + 1, 'token id')
local conn = arg_id(ARG + 2, 'connection id')
local length = arg_int(ARG + 3, 0, MAX_INT, 'length')
local first = arg_int(ARG + 4, 0, MAX_INT, 'first')
begin()
fill()
local info = get_info(id)
local state
if not info then
  local done
  state, done = ended(id)
  state = state or STATE.NONE
  if state == STATE.SPENT then
    if done and done.u > NOW and done.r >= length then
      done.r = done.r - length
      redis.call('HSET', D, id, cjson.encode(done))
      state = REPLY.TAIL
    end
  end
elseif info.s == STATE.WAITING then
  state = STATE.WAITING
elseif count(info.c) >= MAX_CONNS then
  state = REPLY.TOO_MANY
else
  resumed_at(info, first)
  if count(info.c) == 0 then info.hs = nil end  -- (re)starting: measured again from its first report
  info.c = info.c or {}
  info.c[conn] = OWNER
  info.n = info.n or {}
  info.n[conn] = {first, first + length}
  if OWNER ~= '' then redis.call('ZADD', H, 0, OWNER .. '|d|' .. id .. '|' .. conn) end
  if not info.st then
    info.st = NOW
    journal(id, EVENT.STARTED, info, {})
  end
  info.s = STATE.DOWNLOADING
  if (info.cr or 0) == 0 then commit(info, MIN_RATE) end  -- resumed: not measured again yet
  put_info(id, info)
  redis.call('ZADD', A, NOW + STALL_MS, id)
  state = REPLY.OK
end
return reply(publish(), {state = state, position = position(id)})
