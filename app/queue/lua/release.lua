-- release.lua: the next step of a due release (includes/prequeue.lua): start it when it has not
-- started, then draw and place up to RELEASE_BATCH of its pre-queued waiters; or move a file's
-- release time.
-- KEYS, ARGV[1..ARG]: see includes/args.lua and includes/settings.lua.
-- ARGV[ARG + 1] a file id to reschedule, or 0 for the due release (the one due soonest)
-- ARGV[ARG + 2] with a file id: its new release time (ms; 0: release now). A release that has
--   started is not moved.
-- ARGV[ARG + 3..] with 0: the draws, each a uniform random integer below DRAW_LIMIT, at most
--   RELEASE_BATCH (fewer draws place fewer waiters)
-- Returns JSON: the snapshot plus file (the release it worked on, 0: none due), drawn (waiters
-- it placed; the event's placed lists them with their join numbers), left (waiters of that release still to place), due = true when a release is
-- still due after this call (call again). Admits into free slots after placing.
--- @include "reclaim"
--- @include "admission"
--- @include "reply"
WITH_SCHEDULE = false
local target = arg_int(ARG + 1, 0, MAX_INT, 'file id')
local when = arg_int(ARG + 2, 0, MAX_MS, 'release time')
local draws = {}
for n = ARG + 3, #ARGV do
  if #draws == RELEASE_BATCH then bad('too many draws') end
  draws[#draws + 1] = arg_int(n, 0, DRAW_LIMIT - 1, 'draw')
end
begin()
local file, placed, left = 0, 0, 0
if target > 0 then
  if redis.call('ZSCORE', RL, target) and not releasing(target) then
    redis.call('ZADD', RL, when > 0 and when or NOW, target)
  end
else
  local due = redis.call('ZRANGEBYSCORE', RL, '-inf', NOW, 'LIMIT', 0, 1)
  if due[1] then
    file = tonumber(due[1])
    if not releasing(file) then start_release(file) end
    placed, left = draw(file, draws)
  end
end
fill()
return reply(publish(), {file = file, drawn = placed, left = left, due = release_due() or nil})
