-- reply.lua: the snapshot of the line every script answers with, and the event a change
-- publishes (the same snapshot, with who was admitted and which join numbers left).
--- @include "schedule"
--- @include "egress"
--- @include "changes"

local function snapshot()
  local waiting = redis.call('ZCARD', W)
  local r, span = rate()
  local active = redis.call('ZCARD', A)
  local slots, cycle, expected = nil, -1, -1
  if WITH_SCHEDULE and (waiting > 0 or active >= CAPACITY) and active <= SCHEDULE_SLOTS then
    slots, cycle, expected = schedule()
  end
  local egress_rate, limit = nil, nil
  if BUDGET > 0 then
    egress_rate = egress()
    limit = admit_limit(active)
  end
  return {
    now = NOW,
    waiting = waiting,
    active = active,
    egress = egress_rate,
    limit = limit,
    capacity = CAPACITY,
    mode = QUEUE_MODE,
    rate = r,
    rate_span = span,
    slots = slots,
    cycle = cycle,
    expected = expected,
    prequeued = tonumber(redis.call('HGET', PQ, 'all') or 0),
    away = redis.call('ZCARD', AW),
    version = tonumber(redis.call('HGET', C, 'version') or 0),
    epoch = tonumber(redis.call('HGET', C, 'epoch') or 0),
  }
end

-- one event per call that changed the line
local function publish()
  local snap = snapshot()
  if changed then
    snap.version = redis.call('HINCRBY', C, 'version', 1)
    snap.admitted = admitted
    snap.removed = removed
    if #added > 0 then
      snap.added = added
      snap.placed = placed_ids
    end
    redis.call(PUBLISH, CHANNEL, cjson.encode(snap))
  end
  return snap
end

-- where a waiter stands among the present ones (an away one: where it would stand back)
local function position(id)
  local rank = redis.call('ZRANK', W, id)
  if rank then return rank + 1 end
  local seq = redis.call('ZSCORE', AW, id)
  if seq then return redis.call('ZCOUNT', W, '-inf', '(' .. seq) + 1 end
  return nil
end

-- the reply of a script: the snapshot, the queue's settings, plus the asking token's own view
local function reply(snap, fields)
  for k, v in pairs(fields) do snap[k] = v end
  if #admitted == 0 then snap.admitted = nil end
  if #removed == 0 then snap.removed = nil end
  if #added == 0 then
    snap.added = nil
    snap.placed = nil
  end
  snap.settings = SETTINGS
  if rebind then snap.rebind = true end
  if more then snap.more = true end
  return cjson.encode(snap)
end
