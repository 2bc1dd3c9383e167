-- stats.lua: running totals for metrics (stats hash ST), a few HINCRBYs per event whatever the
-- size of the line: joins, admissions, outcome_<OUTCOME>, dropped_<DROP>, bytes; histograms
-- <name>_b<i> / _sum / _n over BUCKETS; the last hour per minute (m<k> = minute, mb<k> bytes,
-- ma<k> admissions).
--- @include "clock"

local function bump(field, n)
  redis.call('HINCRBY', ST, field, n or 1)
end

-- one slot per minute of the last hour (a slot is reset when its minute comes round again)
local function per_minute(kind, n)
  local minute = math.floor(NOW / 60000)
  local slot = minute % 60
  if tonumber(redis.call('HGET', ST, 'm' .. slot)) ~= minute then
    redis.call('HSET', ST, 'm' .. slot, minute, 'mb' .. slot, 0, 'ma' .. slot, 0)
  end
  redis.call('HINCRBY', ST, kind .. slot, n)
end

-- a duration (ms) into a histogram
local function observe(name, ms)
  local i = #BUCKETS + 1
  for n = 1, #BUCKETS do
    if ms <= BUCKETS[n] * 1000 then i = n break end
  end
  bump(name .. '_b' .. i)
  bump(name .. '_sum', math.max(0, ms))
  bump(name .. '_n')
end
