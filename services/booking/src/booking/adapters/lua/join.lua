-- Put a waitlist entry at the end of a slot's waitlist, unless the slot has a unit nobody waits
-- for (the client should book it instead).
-- KEYS[1] event hash, KEYS[2] alloc hash, KEYS[3] load hash, KEYS[4] waiting hash
-- ARGV[1] event sequence the caller checked the slot against, ARGV[2] slot, ARGV[3] its event
-- day, ARGV[4] the entry, ARGV[5] bookings one professional may take per event day (0: no maximum)
-- Returns {1, position (1: first)} when it waits (already waiting: its position); {0} when a unit
-- is free for the taking; {-1} when the event changed since the caller checked.
if redis.call('HGET', KEYS[1], 'sequence') ~= ARGV[1] then return {-1} end
local slot, day, entry, daily_max = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local raw = redis.call('HGET', KEYS[4], slot)
local queue = raw and cjson.decode(raw) or {}
for i, waiting in ipairs(queue) do
  if waiting == entry then return {1, i} end
end
local alloc_raw = redis.call('HGET', KEYS[2], slot)
local free = 0
if alloc_raw then
  local alloc = cjson.decode(alloc_raw)
  for pro, capacity in pairs(alloc.c) do
    local load = tonumber(redis.call('HGET', KEYS[3], day .. '|' .. pro) or '0')
    if under_daily_max(load, daily_max) then free = free + math.max(0, capacity - units_in_use(alloc.u[pro])) end
  end
end
if free > #queue then return {0} end
queue[#queue + 1] = entry
redis.call('HSET', KEYS[4], slot, cjson.encode(queue))
return {1, #queue}
