-- Hold a unit of capacity in a slot for a new booking, from the professional picked here, and
-- remember the booking under the client's Idempotency-Key, all in one step.
-- KEYS[1] event hash {sequence, doc}
-- KEYS[2] alloc hash (slot -> {"c": {professional: capacity}, "u": {professional: {unit: booking}}})
-- KEYS[3] remaining hash (slot -> capacity - units in use)
-- KEYS[4] load hash ("<event day>|<professional>" -> bookings that day)
-- KEYS[5] professionals hash (professional id -> JSON)
-- KEYS[6] holds hash (booking -> {slot, professional, unit, day}), KEYS[7] hold expiry zset
-- KEYS[8] the attempt's idempotency record (a string; unused when ARGV[8] is "")
-- KEYS[9] the client's attempts on this event still inside the window (a zset: booking -> ms)
-- KEYS[10] waiting hash (slot -> its waitlist): while anyone waits for the slot, a unit freed
-- there is theirs (offer.lua), so nobody else can take one
-- ARGV[1] event sequence the caller checked the slot against, ARGV[2] slot, ARGV[3] event day,
-- ARGV[4] random number in [0, 1) chosen by the caller, ARGV[5] booking id,
-- ARGV[6] when the hold expires (ms since the epoch), ARGV[7] hold lifetime (ms),
-- ARGV[8] the request's fingerprint ("" when the client sent no Idempotency-Key),
-- ARGV[9] the slots of the event day, comma-separated (for the open slots a refusal offers)
-- ARGV[10] attempts a client may make per window (0: no limit), ARGV[11] the window (ms),
-- ARGV[12] bookings one professional may take per event day (0: no maximum),
-- ARGV[13] the changes channel, ARGV[14] the event id (slots.lua's announce)
-- Returns {1, professional, unit, professional JSON, eligible JSON ({professional: load})} (the
-- same unit, with no eligible list, when the booking holds one already: taking is idempotent);
-- {0, "remaining,remaining,..." of the day's slots} when nobody has room; {-1} when the event changed
-- since the caller checked the slot (or its counters are gone); {-3, record} when the key was used before;
-- {-4, ms until the oldest attempt leaves the window} when the client has made its attempts in the
-- last window (sliding_log.lua; a replayed key is answered, not counted).
local slot, day, booking = ARGV[2], ARGV[3], ARGV[5]
-- The same booking again (a client that lost the reply sends the command once more): its unit, not another.
local held = redis.call('HGET', KEYS[6], booking)
if held then
  held = cjson.decode(held)
  return {1, held.professional, held.unit, redis.call('HGET', KEYS[5], held.professional) or '{}', '{}'}
end
if ARGV[8] ~= '' then
  local earlier = redis.call('GET', KEYS[8])
  if earlier then return {-3, earlier} end
end
if redis.call('HGET', KEYS[1], 'sequence') ~= ARGV[1] then return {-1} end
-- Counted only here: a retry after a changed event is the same attempt, not another.
if ARGV[10] ~= '0' then
  local now = tonumber(ARGV[6]) - tonumber(ARGV[7]) -- the hold's expiry less its lifetime
  local wait = admit({KEYS[9]}, {tonumber(ARGV[10])}, now, tonumber(ARGV[11]), booking)
  if wait > 0 then return {-4, wait} end
end
local function full() return nobody_has_room(KEYS[3], ARGV[9]) end

if waiting_for(KEYS[10], slot) > 0 then return full() end
local raw = redis.call('HGET', KEYS[2], slot)
if not raw then return full() end
local alloc = cjson.decode(raw)

local pick, loads = least_loaded(alloc, KEYS[4], day, ARGV[4], nil, tonumber(ARGV[12]))
if pick == nil then return full() end
local unit = lowest_free_unit(alloc, pick)
local units = alloc.u[pick] or {}
units[tostring(unit)] = booking
alloc.u[pick] = units
redis.call('HSET', KEYS[2], slot, cjson.encode(alloc))
redis.call('HINCRBY', KEYS[4], day .. '|' .. pick, 1)
redis.call('HINCRBY', KEYS[3], slot, -1)
announce(slot)
redis.call('HSET', KEYS[6], booking, cjson.encode({slot = slot, professional = pick, unit = unit, day = day}))
redis.call('ZADD', KEYS[7], ARGV[6], booking)
if ARGV[8] ~= '' then
  redis.call('SET', KEYS[8], cjson.encode({state = 'held', booking = booking, fingerprint = ARGV[8]}), 'PX', ARGV[7])
end
return {1, pick, unit, redis.call('HGET', KEYS[5], pick) or '{}', cjson.encode(loads)}
