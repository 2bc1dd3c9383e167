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

-- a download's speed is known once steady (progress.lua's measure), or with one sample alone
-- THROUGHPUT_WINDOW from its start: a first report mostly counts what filled the socket buffers,
-- and a client that read ahead then pauses measures slow until its bursts repeat (curl
-- --limit-rate 2M: "2,275 s" for 43 s five seconds in, had time alone made it known)
local function known_speed(info)
  if (info.tp or 0) <= 0 or info.st == nil then return false end
  return info.ts == 1 or (#(info.hs or {}) < 2 and NOW - info.st >= THROUGHPUT_WINDOW)
end

-- when each slot should free (seconds from now, ascending), how long a download takes on average
-- (seconds, -1 unknown: the finished ones, or while none has finished the running ones'
-- projected wholes) and how long one is expected to take counting the running ones too (their
-- projected wholes beside the finished ones: the slow downloads still running count from the
-- start, not only once they end). A running download ends when its remaining bytes are sent at
-- its own recent throughput (record field tp); one not yet measured takes the average, and one
-- measured (two samples) but not yet steady the sooner of the two: a small or fast download
-- is timed half a second in, a client that read ahead is not taken for a slow one. Worked out
-- only while the slots are few enough (SCHEDULE_SLOTS) to read each: with more, the admission
-- rate is the better-informed figure anyway.
local function schedule()
  local done = redis.call('HMGET', ST, 'download_sum', 'download_n')
  local done_s, done_n = tonumber(done[1] or 0) / 1000, tonumber(done[2] or 0)
  local slots, early, unknown, projected, measured = {}, {}, 0, 0, 0
  local function timed(info, left)
    slots[#slots + 1] = left
    projected = projected + (NOW - info.st) / 1000 + left
    measured = measured + 1
  end
  for _, id in ipairs(redis.call('ZRANGE', A, 0, SCHEDULE_SLOTS - 1)) do
    local info = get_info(id)
    local left = info and (info.tp or 0) > 0 and math.max(0, (info.z or 0) - (info.b or 0)) / info.tp
    if left and (info.b or 0) > 0 and known_speed(info) then
      timed(info, left)
    elseif left and info.st and info.hs and #info.hs >= 2 then
      early[#early + 1] = {info, left}
    else
      unknown = unknown + 1
    end
  end
  local function average()
    if done_n > 0 then return done_s / done_n elseif measured > 0 then return projected / measured end
    return -1
  end
  local bar = average()
  for _, e in ipairs(early) do  -- at most SCHEDULE_SLOTS
    if bar > 0 and e[2] < bar then timed(e[1], e[2]) else unknown = unknown + 1 end
  end
  local cycle, expected = average(), -1
  if done_n + measured > 0 then expected = (done_s + projected) / (done_n + measured) end
  for _ = 1, unknown do slots[#slots + 1] = cycle end
  table.sort(slots)
  return slots, cycle, expected
end
