-- Swap an event's counters, built from the record, in for the live ones in one step, keeping the
-- holds in flight (units taken for bookings not committed yet, which the record cannot know).
-- The owner calls it under the event's exclusive lock, so the record cannot change meanwhile; a
-- take can, which is why the holds are merged here, in the same step as the swap, and not read
-- beforehand: no take is lost and none has to be refused while an event is rebuilt.
-- KEYS[1..n] the built keys, KEYS[n+1..2n] the live keys they replace, each in the order
-- event, shifts, alloc, capacity, remaining, load, professionals, holds, hold expiry, waiting
-- ARGV[1] the changes channel, ARGV[2] the event id (slots.lua's announce)
-- Returns {holds kept, holds dropped}; {-1, 0} when already swapped in. A hold of a booking the record has is left out (its commit
-- is done; confirm drops it); a hold on a unit the record gives to another booking, or beyond its
-- professional's capacity, is dropped: its commit is refused by the record and gives nothing back.
-- Sent again on a lost connection after it ran, it must not swap nothing in: the built event
-- hash always exists until the swap, so its absence means this rebuild is done.
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0} end
local n = #KEYS / 2
local ALLOC, CAPACITY, REMAINING, LOAD, HOLDS, HOLD_EXPIRY = KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[8], KEYS[9]
local LIVE_HOLDS, LIVE_HOLD_EXPIRY = KEYS[n + 8], KEYS[n + 9]

local kept, dropped = 0, 0
local live = redis.call('HGETALL', LIVE_HOLDS)
for i = 1, #live, 2 do
  local booking, state = live[i], live[i + 1]
  local hold = cjson.decode(state)
  local raw = redis.call('HGET', ALLOC, hold.slot)
  local alloc = raw and cjson.decode(raw) or {c = {}, u = {}}
  local unit, pro = tostring(hold.unit), hold.professional
  if holder_of(alloc, booking) then
    -- committed: the record already gives it its unit
  elseif (alloc.u[pro] or {})[unit] == nil and tonumber(unit) <= (alloc.c[pro] or 0) then
    alloc.u[pro] = alloc.u[pro] or {}
    alloc.u[pro][unit] = booking
    save_slot(ALLOC, CAPACITY, REMAINING, hold.slot, alloc)
    redis.call('HINCRBY', LOAD, hold.day .. '|' .. pro, 1)
    redis.call('HSET', HOLDS, booking, state)
    redis.call('ZADD', HOLD_EXPIRY, redis.call('ZSCORE', LIVE_HOLD_EXPIRY, booking) or 0, booking)
    kept = kept + 1
  else
    dropped = dropped + 1
  end
end

for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('RENAME', KEYS[i], KEYS[i + n])
  else
    redis.call('DEL', KEYS[i + n])
  end
end
redis.call('PUBLISH', ARGV[1], ARGV[2]) -- every day of the event may look different now
return {kept, dropped}
