-- progress.lua: bytes were sent for a token; renew its lease, record coverage, maybe finish.
-- KEYS and ARGV[1..4]: see lib.lua.
-- ARGV[5] token id   ARGV[6] connection id
-- ARGV[7] first byte sent by this connection   ARGV[8] end (exclusive) of what it has sent
-- ARGV[9] bytes sent since its last report     ARGV[10] stall timeout (ms)
-- ARGV[11] 1 when the connection is closing, else 0
-- Returns JSON: the snapshot plus state =
--   ok (lease renewed) | paused (last connection closed, slot kept for the resume grace)
--   | complete (every byte of the file sent under the token: slot freed, token spent,
--     next waiter admitted) | gone (the slot was reclaimed: stop sending).
local id, conn = ARGV[5], ARGV[6]
local first, last, delta = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local stall, closing = tonumber(ARGV[10]), ARGV[11] == '1'
reap()
local info = get_info(id)
local state
if not info or info.s == 'waiting' then
  state = 'gone'
else
  info.b = (info.b or 0) + delta
  -- merge [first, last) into the sorted, disjoint list of covered ranges
  local ranges = info.r or {}
  if last > first then
    ranges[#ranges + 1] = {first, last}
    table.sort(ranges, function(x, y) return x[1] < y[1] end)
    local merged = {}
    for _, r in ipairs(ranges) do
      local top = merged[#merged]
      if top and r[1] <= top[2] then
        if r[2] > top[2] then top[2] = r[2] end
      else
        merged[#merged + 1] = {r[1], r[2]}
      end
    end
    ranges = merged
  end
  info.r = ranges
  if (info.z or 0) == 0 or (#ranges == 1 and ranges[1][1] == 0 and ranges[1][2] >= info.z) then
    redis.call('ZADD', S, info.e or NOW, id)
    release(id, info, 'completed')
    state = 'complete'
  else
    local conns = info.c or {}
    if closing then conns[conn] = nil else conns[conn] = NOW + stall end
    local open = 0
    for cid, deadline in pairs(conns) do
      if deadline > NOW then open = open + 1 else conns[cid] = nil end
    end
    info.c = conns
    if open == 0 then
      info.s = 'paused'
      redis.call('ZADD', A, NOW + RESUME_MS, id)
      state = 'paused'
    else
      info.s = 'downloading'
      redis.call('ZADD', A, NOW + stall, id)
      state = 'ok'
    end
    put_info(id, info)
  end
end
fill()
return reply(publish(), {state = state})
