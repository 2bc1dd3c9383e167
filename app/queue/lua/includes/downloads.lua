-- downloads.lua: what a download's connections delivered, and whether it is complete, paused or
-- running (the byte ranges of records.lua: r, w, t, k).
--- @include "line"

local function covered(info)
  local ranges = info.r or {}
  return (info.z or 0) == 0 or (#ranges == 1 and ranges[1][1] == 0 and ranges[1][2] >= info.z)
end

-- sort and merge byte ranges {first, end}; a client asking for scattered ranges keeps at most
-- MAX_RANGES of them (the rules below still decide)
local function merge_ranges(ranges)
  table.sort(ranges, function(x, y) return x[1] < y[1] end)
  local merged = {}
  for _, r in ipairs(ranges) do
    local top = merged[#merged]
    if top and r[1] <= top[2] then
      if r[2] > top[2] then top[2] = r[2] end
    elseif #merged < MAX_RANGES then
      merged[#merged + 1] = {r[1], r[2]}
    end
  end
  return merged
end

-- bytes this token's connections were asked for but closed without (info.w) and that no
-- connection has since delivered; forgets what was delivered, true while any remain
local function owed(info)
  local left = {}
  for _, w in ipairs(info.w or {}) do
    local delivered = false
    for _, r in ipairs(info.r or {}) do
      if r[1] <= w[1] and w[2] <= r[2] then delivered = true end
    end
    if not delivered then left[#left + 1] = w end
  end
  info.w = nil
  if #left > 0 then info.w = left end
  return #left > 0
end

-- a connection ended without a closing report (its process died): what it had yet to have
-- acknowledged is owed, unless it had handed every byte to its kernel, which delivers them
-- after the process
local function drop_connection(info, conn)
  info.c[conn] = nil
  local open = info.n and info.n[conn]
  if open then
    info.n[conn] = nil
    if next(info.n) == nil then info.n = nil end
  end
  if info.k and info.k[conn] then
    info.k[conn] = nil
    info.t = 1
  elseif open and open[1] < open[2] then
    local holes = info.w or {}
    holes[#holes + 1] = {open[1], open[2]}
    info.w = merge_ranges(holes)
  end
end

-- a client resuming at byte ``first`` inside a stretch a connection closed without, or one whose
-- process died before it reported, says it has the bytes before it (it may have read a little
-- more than the server saw acknowledged: an ACK lags the data it acknowledges)
local function resumed_at(info, first)
  for _, hole in ipairs(info.w or {}) do
    if hole[1] < first and first < hole[2] then hole[1] = first end
  end
  for _, open in pairs(info.n or {}) do
    if open[1] < first and first < open[2] then open[1] = first end
  end
end

-- after a download's connections changed: complete it, pause it, or keep it running (a REPLY)
local function settle(id, info)
  local open = count(info.c)
  if covered(info) or (info.t == 1 and open == 0 and not owed(info)) then
    complete(id, info)
    return REPLY.COMPLETE
  end
  if open == 0 then
    info.s = STATE.PAUSED
    commit(info, 0)
    redis.call('ZADD', A, NOW + RESUME_MS, id)
  else
    info.s = STATE.DOWNLOADING
    redis.call('ZADD', A, NOW + STALL_MS, id)
  end
  put_info(id, info)
  if open == 0 then return REPLY.PAUSED end
  return REPLY.OK
end

-- how a download whose lease ran out ended
local function expired_outcome(info)
  if info.s == STATE.ADMITTED then return OUTCOME.NO_SHOW end
  if info.s == STATE.DOWNLOADING then return OUTCOME.STALLED end
  return OUTCOME.ABANDONED
end
