-- Take one unit of capacity in a slot and pick the professional who gives it.
-- KEYS[1] event hash {sequence, doc}
-- KEYS[2] alloc hash (slot -> {"c": {professional: capacity}, "u": {professional: used}})
-- KEYS[3] remaining hash (slot -> capacity - used)
-- KEYS[4] load hash ("<event day>|<professional>" -> bookings that day)
-- KEYS[5] professionals hash (professional id -> JSON)
-- KEYS[6] the event's rebuilding flag
-- ARGV[1] event sequence the caller checked the slot against, ARGV[2] slot,
-- ARGV[3] event day (YYYY-MM-DD), ARGV[4] random number in [0, 1) chosen by the caller
-- Returns {1, professional id, professional JSON}; {0} when the slot has no open capacity;
-- {-1} when the event changed since the caller checked the slot (check again);
-- {-2} while the event's counters are being rebuilt (try again shortly).
if redis.call('EXISTS', KEYS[6]) == 1 then return {-2} end
if redis.call('HGET', KEYS[1], 'sequence') ~= ARGV[1] then return {-1} end
local raw = redis.call('HGET', KEYS[2], ARGV[2])
if not raw then return {0} end
local alloc = cjson.decode(raw)

local eligible = {}
for pro, capacity in pairs(alloc.c) do
  if capacity - (alloc.u[pro] or 0) > 0 then table.insert(eligible, pro) end
end
if #eligible == 0 then return {0} end
table.sort(eligible) -- pairs() has no order; sorting keeps the pick a function of the inputs

-- Fewest bookings on the event day first; ties broken by the caller's random number.
local fewest, candidates = nil, {}
for _, pro in ipairs(eligible) do
  local load = tonumber(redis.call('HGET', KEYS[4], ARGV[3] .. '|' .. pro) or '0')
  if fewest == nil or load < fewest then
    fewest, candidates = load, {pro}
  elseif load == fewest then
    table.insert(candidates, pro)
  end
end
local index = math.min(#candidates, math.floor(tonumber(ARGV[4]) * #candidates) + 1)
local pick = candidates[index]

alloc.u[pick] = (alloc.u[pick] or 0) + 1
redis.call('HSET', KEYS[2], ARGV[2], cjson.encode(alloc))
redis.call('HINCRBY', KEYS[3], ARGV[2], -1)
redis.call('HINCRBY', KEYS[4], ARGV[3] .. '|' .. pick, 1)
return {1, pick, redis.call('HGET', KEYS[5], pick) or '{}'}
