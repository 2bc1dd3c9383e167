-- records.lua: the per-token record (info hash, JSON) and the done entry of a completed token.
--
-- The legend of a token's record while it waits or holds a slot (I: token id -> JSON):
--   s   state: STATE.WAITING | ADMITTED | DOWNLOADING | PAUSED
--   q   join number (its score in the waiting line)      j   joined at (ms)
--   e   token expiry (ms, Unix epoch)                     f   file id
--   z   file size (bytes)                                 ip  client address (at most CLIENT_MAX)
--   h   the client its place counts against (places key PL: address, /64 or issuer's subject);
--       absent: exempt (a token its issuer gave no subject)
--   o   {owner = 1}: processes whose streams hold the waiter (no presence deadline meanwhile)
--   a   admitted at (ms)                                  st  first connection started at (ms)
--   c   {connection id = owner ('' for none)}: the download's open connections
--   b   bytes the client acknowledged, all connections together
--   r   {{first, end}, ...}: byte ranges acknowledged, merged (at most MAX_RANGES)
--   w   {{first, end}, ...}: ranges connections closed without and no one has delivered since
--   t   1: a connection whose range ran to the file's end closed with every byte acknowledged
--   k   {connection id = 1}: connections that handed every byte to their kernel
--   n   {connection id = {first, end}}: what each open connection has yet to have acknowledged
--       (from its last report; a resume inside it moves its first byte up, as with w)
--   cr  bytes/s the download counts for against the egress budget (their sum: counters.committed)
--   tp  the download's recent throughput (bytes/s, burst to burst over the samples hs: see
--       progress.lua's measure; at the first sample, its average since it started)
--   hs  {{time (ms), b}, ...}: the samples tp is worked out from, reports that brought bytes
--       (THROUGHPUT_SAMPLES at most)
--   tv  tp as of the newest sample (from two samples or more)
--   ts  1: steady, two samples in a row measured tp alike (progress.lua's measure)
--   pq  1: waits in its file's pre-queue, no join number yet (its index is in PQ, prequeue.lua)
--   d   the place a scheduled release drew for it (1: the first)
--   aw  away since (ms): its presence stopped; out of the line W, in the away set (away.lua)
--
-- The done entry of a completed or removed token (D: token id -> JSON):
--   u   resumable until (ms)     r   tail bytes it may still fetch without a slot
--   x   1: an operator removed it (it may not join or download again)
--   g   STATE.LAPSED or STATE.MISSED: what ended it without a download (no u, no r: no tail)

local function get_info(id)
  local raw = redis.call('HGET', I, id)
  if raw then return cjson.decode(raw) end
  return nil
end

local function put_info(id, info)
  redis.call('HSET', I, id, cjson.encode(info))
end

-- bytes acknowledged more than once: all acknowledged (b) less the distinct ones (r; a client
-- with more than MAX_RANGES scattered ranges makes this an overestimate)
local function resent(info)
  local distinct = 0
  for _, r in ipairs(info.r or {}) do distinct = distinct + r[2] - r[1] end
  return math.max(0, (info.b or 0) - distinct)
end

local function count(tbl)
  local n = 0
  for _ in pairs(tbl or {}) do n = n + 1 end
  return n
end
