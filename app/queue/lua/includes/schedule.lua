-- schedule.lua: the figures the ETA is worked out from: the admission rate (admits list R) and
-- when each slot should free.
--- @include "records"
--- @include "clock"

-- set by the scripts whose replies feed ETAs (join, status, summary, reap, inspect: every
-- process's hub refreshes its line from its once-a-second reap); the others skip the reads
local WITH_SCHEDULE = false

-- admissions per second over the recent window, and the window's length in seconds (it runs to
-- now, so a silence lowers the rate); 0 when unknown: fewer than two, or a window under a second
local function rate()
  local n = redis.call('LLEN', R)
  if n < 2 then return 0, 0 end
  local newest = tonumber(redis.call('LINDEX', R, 0))
  local oldest = tonumber(redis.call('LINDEX', R, n - 1))
  local span = math.max(NOW, newest) - oldest
  if span < 1000 then return 0, 0 end
  return (n - 1) * 1000 / span, span / 1000
end

-- when each slot should free (seconds from now, ascending) and how long a download takes on
-- average (seconds, -1 unknown): a running download's remaining bytes at its own recent
-- throughput (record field tp); one not yet measured takes the average. Worked out only while
-- the slots are few enough (SCHEDULE_SLOTS) to read each: with more, the admission rate is the
-- better-informed figure anyway.
local function schedule()
  local done = redis.call('HMGET', ST, 'download_sum', 'download_n')
  local cycle = -1
  if tonumber(done[2] or 0) > 0 then cycle = tonumber(done[1]) / tonumber(done[2]) / 1000 end
  local slots, unknown, projected, measured = {}, 0, 0, 0
  for _, id in ipairs(redis.call('ZRANGE', A, 0, SCHEDULE_SLOTS - 1)) do
    local info = get_info(id)
    if info and info.st and (info.b or 0) > 0 and NOW > info.st then
      local speed = (info.tp and info.tp > 0) and info.tp or info.b * 1000 / (NOW - info.st)
      local left = math.max(0, (info.z or 0) - info.b) / speed
      slots[#slots + 1] = left
      projected = projected + (NOW - info.st) / 1000 + left
      measured = measured + 1
    else
      unknown = unknown + 1
    end
  end
  -- no download finished yet: the running ones' projected durations stand in for the average
  if cycle < 0 and measured > 0 then cycle = projected / measured end
  for _ = 1, unknown do slots[#slots + 1] = cycle end
  table.sort(slots)
  return slots, cycle
end
