-- journal.lua: history events (an EVENT: admitted, started, finished) appended to the journal stream in
-- the same atomic step as the change; the history recorder moves them into the database.
--- @include "clock"

local function journal(id, event, info, extra)
  local fields = {'t', id, 'event', event, 'ts', NOW, 'file', info.f or 0}
  for _, v in ipairs(extra or {}) do fields[#fields + 1] = v end
  redis.call('XADD', J, 'MAXLEN', '~', JOURNAL_MAX, '*', unpack(fields))  -- at most 16 values
end
