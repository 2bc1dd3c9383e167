-- configure.lua: an operator changes the queue's rules; every process follows from its next call.
-- KEYS, ARGV[1..ARG]: see includes/args.lua and includes/settings.lua.
-- ARGV[ARG + 1..] field, value pairs (at most one per field): any of FIELDS (integers within
--   LOWS..LIMITS) and mode (a MODE: open | paused: admit no one | draining: take no newcomers).
-- Every pair is checked before anything is written. Slots a larger capacity or a resumed line
-- frees are filled in the same call, and one event tells every process's waiters.
-- Returns JSON: the snapshot with the settings as now stored.
--- @include "reclaim"
--- @include "admission"
--- @include "reply"
local n = #ARGV - ARG
if n < 2 or n % 2 == 1 or n > 2 * (#FIELDS + 1) then bad('settings') end
local index = {}
for k = 1, #FIELDS do index[FIELDS[k]] = k end
local values = {}
for i = ARG + 1, #ARGV, 2 do
  local name = ARGV[i]
  if name == 'mode' then
    if not MODES[ARGV[i + 1]] then bad('mode') end
    values[#values + 1] = name
    values[#values + 1] = ARGV[i + 1]
  elseif index[name] then
    values[#values + 1] = name
    values[#values + 1] = arg_int(i + 1, LOWS[index[name]], LIMITS[index[name]], name)
  else
    bad('setting')
  end
end
begin()
redis.call('HSET', CFG, unpack(values))  -- at most 2 * (#FIELDS + 1) values
for i = 1, #values, 2 do SETTINGS[values[i]] = values[i + 1] end
follow_settings()
changed = true
fill()
return reply(publish(), {})
