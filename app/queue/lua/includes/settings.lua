-- settings.lua: the queue's rules, stored in the settings hash (CFG): the one source of truth.
-- ARGV[3..ARG] the settings to seed when the queue has none, in FIELDS order (constants.BOUNDS:
-- counts, durations in ms, bytes, bytes/s); each within LOWS..LIMITS. Script-specific ARGV
-- start at ARGV[ARG + 1] (ARG = 2 + #FIELDS).
--- @include "args"

local ARG = 2 + #FIELDS
local SEED, SETTINGS, missing = {}, {}, false
do
  local stored = redis.call('HMGET', CFG, 'mode', unpack(FIELDS))  -- 1 + #FIELDS values
  for n = 1, #FIELDS do
    SEED[n] = arg_int(2 + n, LOWS[n], LIMITS[n], FIELDS[n])
    SETTINGS[FIELDS[n]] = tonumber(stored[n + 1]) or SEED[n]
    if not stored[n + 1] then missing = true end
  end
  SETTINGS.mode = MODES[stored[1]] and stored[1] or MODE.OPEN
end

local CAPACITY, MAX_LEN, ADMIT_MS, STALL_MS, RESUME_MS, WAIT_MS, MAX_CONNS, TAIL, QUEUE_MODE, BUDGET, MIN_RATE
local MAX_PLACES, AWAY_MS
-- the rules every step below follows (configure.lua calls it again after changing them)
local function follow_settings()
  CAPACITY, MAX_LEN = SETTINGS.capacity, SETTINGS.max_queue_length
  ADMIT_MS, STALL_MS, RESUME_MS = SETTINGS.admit_ms, SETTINGS.stall_ms, SETTINGS.resume_ms
  WAIT_MS, MAX_CONNS, TAIL = SETTINGS.wait_ms, SETTINGS.max_connections, SETTINGS.resume_tail
  QUEUE_MODE = SETTINGS.mode
  BUDGET, MIN_RATE = SETTINGS.egress_budget, SETTINGS.min_rate
  MAX_PLACES, AWAY_MS = SETTINGS.max_places, SETTINGS.away_ms
end
follow_settings()
