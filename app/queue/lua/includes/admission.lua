-- admission.lua: the head of the line takes a free slot.
--- @include "line"

local function admit(head, seq, info)
  unbind_all(head, info)
  redis.call('ZREM', W, head)
  redis.call('ZREM', P, head)
  redis.call('ZREM', E, head)
  removed[#removed + 1] = seq
  info.s = STATE.ADMITTED
  info.a = NOW
  commit(info, MIN_RATE)
  put_info(head, info)
  redis.call('ZADD', A, NOW + ADMIT_MS, head)
  redis.call('LPUSH', R, NOW)
  redis.call('LTRIM', R, 0, RATE_WINDOW - 1)
  journal(head, EVENT.ADMITTED, info, {'joined', info.j or NOW, 'client', info.ip or '', 'seq', seq,
                                       'drawn', info.d or ''})
  bump('admissions')
  per_minute('ma', 1)
  observe('wait', NOW - (info.j or NOW))
  admitted[#admitted + 1] = head
  changed = true
end

-- admit from the head of the line while a slot is free (at most RECLAIM_BATCH steps per call);
-- a paused line admits no one
local function fill()
  if QUEUE_MODE == MODE.PAUSED then return end
  for step = 1, RECLAIM_BATCH + 1 do
    if step > RECLAIM_BATCH then more = true break end
    local active = redis.call('ZCARD', A)
    if active >= CAPACITY or (BUDGET > 0 and active >= admit_limit(active)) then break end
    local first = redis.call('ZRANGE', W, 0, 0, 'WITHSCORES')
    local head, seq = first[1], tonumber(first[2])
    if not head then break end
    local info = get_info(head) or {}
    if (info.e or 0) <= NOW then drop_waiter(head, DROP.EXPIRED) else admit(head, seq, info) end
  end
end
