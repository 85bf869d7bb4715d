-- Give a booking a unit of capacity in a slot, from the professional picked here:
--   take: a new booking's unit, held until its commit is confirmed;
--   move: a booking's unit from its professional to another one with room (reassignment).
-- KEYS[1] event hash {sequence, doc}
-- KEYS[2] alloc hash (slot -> {"c": {professional: capacity}, "u": {professional: {unit: booking}}})
-- KEYS[3] remaining hash (slot -> capacity - units in use)
-- KEYS[4] load hash ("<event day>|<professional>" -> bookings that day)
-- KEYS[5] professionals hash (professional id -> JSON)
-- KEYS[6] the event's rebuilding flag
-- KEYS[7] holds hash (booking -> {slot, professional, unit, day}), KEYS[8] hold expiry zset
-- ARGV[1] "take" or "move", ARGV[2] event sequence the caller checked the slot against ("" for move),
-- ARGV[3] slot, ARGV[4] event day (YYYY-MM-DD), ARGV[5] random number in [0, 1) chosen by the caller,
-- ARGV[6] booking id, ARGV[7] take: when the hold expires (ms since the epoch),
-- ARGV[8] move: the booking's professional, ARGV[9] move: its unit
-- Returns {1, professional, unit, professional JSON, eligible JSON ({professional: load})};
-- {0} when nobody (else) has room; {-1} when the event changed since the caller checked the slot;
-- {-2} while the event's counters are being rebuilt (try again shortly).
local mode, slot, day, booking = ARGV[1], ARGV[3], ARGV[4], ARGV[6]
if redis.call('EXISTS', KEYS[6]) == 1 then return {-2} end
if mode == 'take' and redis.call('HGET', KEYS[1], 'sequence') ~= ARGV[2] then return {-1} end
local raw = redis.call('HGET', KEYS[2], slot)
if not raw then return {0} end
local alloc = cjson.decode(raw)

local function in_use(pro)
  local n = 0
  for _ in pairs(alloc.u[pro] or {}) do n = n + 1 end
  return n
end

local eligible = {}
for pro, capacity in pairs(alloc.c) do
  if pro ~= ARGV[8] and capacity - in_use(pro) > 0 then table.insert(eligible, pro) end
end
if #eligible == 0 then return {0} end
table.sort(eligible) -- pairs() has no order; sorting keeps the pick a function of the inputs

-- Fewest bookings on the event day first; ties broken by the caller's random number.
local loads, fewest, candidates = {}, nil, {}
for _, pro in ipairs(eligible) do
  local load = tonumber(redis.call('HGET', KEYS[4], day .. '|' .. pro) or '0')
  loads[pro] = load
  if fewest == nil or load < fewest then
    fewest, candidates = load, {pro}
  elseif load == fewest then
    table.insert(candidates, pro)
  end
end
local pick = candidates[math.min(#candidates, math.floor(tonumber(ARGV[5]) * #candidates) + 1)]

-- The lowest unit number free within the professional's capacity (fewer in use than capacity,
-- so one is): PostgreSQL refuses two confirmed bookings on one unit.
local units = alloc.u[pick] or {}
local unit = 1
while units[tostring(unit)] do unit = unit + 1 end
units[tostring(unit)] = booking
alloc.u[pick] = units
redis.call('HINCRBY', KEYS[4], day .. '|' .. pick, 1)

if mode == 'take' then
  redis.call('HINCRBY', KEYS[3], slot, -1)
  redis.call('HSET', KEYS[7], booking, cjson.encode({slot = slot, professional = pick, unit = unit, day = day}))
  redis.call('ZADD', KEYS[8], ARGV[7], booking)
else
  -- One unit freed where one is taken: remaining does not change.
  local old = alloc.u[ARGV[8]]
  if old and old[ARGV[9]] == booking then
    old[ARGV[9]] = nil
    if next(old) == nil then alloc.u[ARGV[8]] = nil end
    local old_load = day .. '|' .. ARGV[8]
    if tonumber(redis.call('HGET', KEYS[4], old_load) or '0') > 1 then
      redis.call('HINCRBY', KEYS[4], old_load, -1)
    else
      redis.call('HDEL', KEYS[4], old_load)
    end
  end
end
redis.call('HSET', KEYS[2], slot, cjson.encode(alloc))
return {1, pick, unit, redis.call('HGET', KEYS[5], pick) or '{}', cjson.encode(loads)}
