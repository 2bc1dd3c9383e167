-- changes.lua: what this call changed, published once by publish() and told in its reply.

local admitted, removed = {}, {}  -- token ids admitted; join numbers that left the line
local added, placed_ids = {}, {}  -- join numbers a release placed in the line; {token id, join number}
local changed = false  -- someone's place or the line's rules moved: publish an event
local rebind = false  -- the calling process had been given up for dead
local more = false  -- reclaiming stopped at its per-call budget: another call should follow
