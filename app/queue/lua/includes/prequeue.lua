-- prequeue.lua: the waiters of a file whose release is still to come, and its release.
--
-- Before a file's release time its newcomers wait in its pre-queue, in no order: they hold a
-- place (presence, expiry and the places-per-client cap as in the line) but no join number. At
-- the release the pre-queue is shuffled uniformly at random and placed in the line, ahead of
-- whoever joins after the release started: the release reserves a block of join numbers for
-- all of them at once (start_release), then draw() places RELEASE_BATCH at a time, each the
-- step of a Fisher-Yates shuffle made with a random integer the caller sends (a cryptographic
-- source, never Lua's). Any process may make the next call: the state is here, not in one host.
--
-- RL (ZSET) file id -> release time (ms): files whose pre-queue is not wholly placed yet
-- PQ (HASH) '<file>:<i>' (i = 1..n) the token ids   '<file>@<id>' that token's index i
--           '<file>:n' how many wait                 'all' the pre-queued of every file
--           '<file>:base' the join number before the release's block (set when it starts)
--           '<file>:drawn' how many it placed
-- A pre-queued record (records.lua) has pq = 1; a placed one d = the place it drew. The index
-- lives in PQ, not in the record, so moving a waiter to another index rewrites one field.
--- @include "records"
--- @include "changes"

local function pq_field(file, name)
  return tostring(file) .. ':' .. name
end

local function pq_number(file, name)
  return tonumber(redis.call('HGET', PQ, pq_field(file, name)))
end

-- the release of ``file`` has started (its block of join numbers is reserved)
local function releasing(file)
  return pq_number(file, 'base') ~= nil
end

-- a pre-queue that emptied is forgotten (before its release, or when its last one is placed)
local function forget_if_empty(file, n)
  if n > 0 then return end
  redis.call('ZREM', RL, file)
  redis.call('HDEL', PQ, pq_field(file, 'n'), pq_field(file, 'base'), pq_field(file, 'drawn'))
end

-- a release is due (or under way): some process should call release.lua
local function release_due()
  return #redis.call('ZRANGEBYSCORE', RL, '-inf', NOW, 'LIMIT', 0, 1) > 0
end

local function index_field(file, id)
  return tostring(file) .. '@' .. id
end

-- a newcomer before the release: it takes the next index (``record`` is written by the caller)
local function prequeue(id, record, release)
  local file = record.f
  redis.call('ZADD', RL, release, file)
  local n = redis.call('HINCRBY', PQ, pq_field(file, 'n'), 1)
  redis.call('HSET', PQ, pq_field(file, n), id, index_field(file, id), n)
  redis.call('HINCRBY', PQ, 'all', 1)
  record.pq = 1
end

-- take index ``i`` out of the file's pre-queue of ``n``: the last one moves into its index
local function pq_take(file, i, n)
  local id = redis.call('HGET', PQ, pq_field(file, i))
  if i ~= n then
    local last = redis.call('HGET', PQ, pq_field(file, n))
    redis.call('HSET', PQ, pq_field(file, i), last, index_field(file, last), i)
  end
  redis.call('HDEL', PQ, pq_field(file, n), index_field(file, id))
  return id
end

-- pre-queued waiter ``id`` leaves (lapsed, expired, left, removed)
local function unqueue(id, info)
  local file = info.f
  local n = pq_number(file, 'n') or 0
  local i = tonumber(redis.call('HGET', PQ, index_field(file, id)))
  if not i or i > n then return end
  pq_take(file, i, n)
  redis.call('HSET', PQ, pq_field(file, 'n'), n - 1)
  redis.call('HINCRBY', PQ, 'all', -1)
  forget_if_empty(file, n - 1)
end

-- the release begins: a block of join numbers for every pre-queued waiter, taken now, so that
-- whoever joins from now on stands behind all of them
local function start_release(file)
  local n = pq_number(file, 'n') or 0
  local top = redis.call('HINCRBY', C, 'seq', n)
  redis.call('HSET', PQ, pq_field(file, 'base'), top - n, pq_field(file, 'drawn'), 0)
end

-- place at most #draws pre-queued waiters of a started release in the line (each draw a uniform
-- integer below DRAW_LIMIT); returns how many it placed and how many are left
local function draw(file, draws)
  local n = pq_number(file, 'n') or 0
  local base, drawn = pq_number(file, 'base'), pq_number(file, 'drawn') or 0
  local placed = 0
  for k = 1, math.min(#draws, RELEASE_BATCH) do
    if n == 0 then break end
    local id = pq_take(file, draws[k] % n + 1, n)
    n, drawn, placed = n - 1, drawn + 1, placed + 1
    local info = get_info(id)
    if info then
      info.pq, info.q, info.d = nil, base + drawn, drawn
      put_info(id, info)
      if info.aw then  -- away (away.lua): its place is kept out of the line until it returns
        redis.call('ZADD', AW, base + drawn, id)
      else
        redis.call('ZADD', W, base + drawn, id)
        added[#added + 1] = base + drawn
        placed_ids[#placed_ids + 1] = {id, base + drawn}
      end
    end
  end
  redis.call('HSET', PQ, pq_field(file, 'n'), n, pq_field(file, 'drawn'), drawn)
  redis.call('HINCRBY', PQ, 'all', -placed)
  forget_if_empty(file, n)
  if placed > 0 then changed = true end
  return placed, n
end
