-- egress.lua: the egress budget. Bytes the clients acknowledged per second, from every host
-- (stats: s<k> = second, sb<k> bytes, a ring of EGRESS_SLOTS), and what each running download
-- counts for against the budget (record field cr; their sum is counters.committed).
--- @include "settings"
--- @include "clock"

local function per_second(n)
  local second = math.floor(NOW / 1000)
  local slot = second % EGRESS_SLOTS
  if tonumber(redis.call('HGET', ST, 's' .. slot)) ~= second then
    redis.call('HSET', ST, 's' .. slot, second, 'sb' .. slot, 0)
  end
  redis.call('HINCRBY', ST, 'sb' .. slot, n)
end

-- bytes/s over the last EGRESS_WINDOW whole seconds (a host that stops reporting stops counting)
local function egress()
  local second = math.floor(NOW / 1000)
  local fields = {}
  for k = 1, EGRESS_WINDOW do
    fields[#fields + 1] = 's' .. (second - k) % EGRESS_SLOTS
    fields[#fields + 1] = 'sb' .. (second - k) % EGRESS_SLOTS
  end
  local got = redis.call('HMGET', ST, unpack(fields))  -- 2 * EGRESS_WINDOW fields
  local bytes = 0
  for k = 1, EGRESS_WINDOW do
    if tonumber(got[2 * k - 1]) == second - k then bytes = bytes + tonumber(got[2 * k] or 0) end
  end
  return bytes / EGRESS_WINDOW
end

-- what a running download counts for: MIN_RATE until its throughput is measured, then what its
-- client takes, capped at MIN_RATE (a faster one gives way under the hosts' max-min shares), 0
-- while paused or after it ended. Only kept while a budget is set; always given back.
local function commit(info, rate)
  if BUDGET <= 0 and rate > 0 then rate = 0 end
  rate = math.floor(rate)
  local delta = rate - (info.cr or 0)
  if delta ~= 0 then redis.call('HINCRBY', C, 'committed', delta) end
  info.cr = rate
end

-- how many downloads may run now: the capacity, and with an egress budget only as many as leave
-- room for one more at MIN_RATE beside what the running ones count for
local function admit_limit(active)
  if BUDGET <= 0 then return CAPACITY end
  local committed = tonumber(redis.call('HGET', C, 'committed') or 0)
  local room = math.floor((BUDGET - committed) / MIN_RATE)
  return math.min(CAPACITY, active + math.max(0, room))
end
