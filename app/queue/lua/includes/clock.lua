-- clock.lua: NOW, Redis server time in ms (hosts with skewed clocks agree), plus the counters'
-- skew (tests move the queue's clock forward with it).

local NOW
do
  local t = redis.call('TIME')
  NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(redis.call('HGET', C, 'skew') or 0)
end
