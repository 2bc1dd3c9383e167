-- args.lua: argument checks and the two ARGV every script starts with.
-- ARGV[1] pub/sub channel for state-change events (names the queue and the database); the
--         line before the header sets PUBLISH: 'SPUBLISH' on a cluster, 'PUBLISH' elsewhere
-- ARGV[2] the calling process's owner id ('' for none); a call is its sign of life
-- A bad argument raises "BADARG <name>" before any write.

local function bad(name)
  error({err = 'BADARG ' .. name})
end

local function arg_int(i, lo, hi, name)
  local v = tonumber(ARGV[i])
  if v == nil or v ~= v or v < lo or v > hi or math.floor(v) ~= v then bad(name) end
  return v
end

-- a token or connection id: 1 to ID_MAX characters of ID_PATTERN (constants.py's ID rule)
local function arg_id(i, name)
  local v = ARGV[i]
  if v == nil or #v > ID_MAX or not string.find(v, ID_PATTERN) then bad(name) end
  return v
end

local CHANNEL = ARGV[1]
local OWNER = ARGV[2] or ''
if CHANNEL == nil or #CHANNEL == 0 then bad('channel') end
if string.find(OWNER, '|', 1, true) then bad('owner') end
