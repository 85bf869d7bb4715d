-- Find a confirmed booking a unit within someone's capacity in its slot, after capacity was taken
-- away under it: its own professional's lowest free unit if they still have room, else the
-- professional with room and the fewest bookings that event day (ties by the caller's random
-- number), else none (the unit is given back and the booking is to be flagged).
-- Idempotent: a booking already on a unit within its professional's capacity stays where it is.
-- KEYS[1] alloc hash, KEYS[2] remaining hash, KEYS[3] load hash, KEYS[4] professionals hash,
-- KEYS[5] the event hash (its counters exist only where it does), KEYS[6] capacity hash
-- ARGV[1] slot, ARGV[2] event day, ARGV[3] booking, ARGV[4] random number in [0, 1),
-- ARGV[5] the booking's professional in the record, ARGV[6] "blocked" when nobody may hold the slot,
-- ARGV[7] bookings one professional may take per event day (0: no maximum),
-- ARGV[8] the changes channel, ARGV[9] the event id (slots.lua's announce)
-- Returns {1, professional, unit, professional JSON, eligible JSON} where it now is;
-- {0} when nobody has room (it holds nothing now); {-2} when the event has no counters (Redis
-- lost them): "nobody has room" would then be a guess.
local slot, day, booking = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', KEYS[5]) == 0 then return {-2} end
local raw = redis.call('HGET', KEYS[1], slot)
local alloc = raw and cjson.decode(raw) or {c = {}, u = {}}

local holder, held_unit = holder_of(alloc, booking)
if holder and ARGV[6] ~= 'blocked' and tonumber(held_unit) <= (alloc.c[holder] or 0) then
  return {1, holder, tonumber(held_unit), redis.call('HGET', KEYS[4], holder) or '{}', '{}'}
end
local previous = holder or ARGV[5]
if holder then
  alloc.u[holder][held_unit] = nil
  if next(alloc.u[holder]) == nil then alloc.u[holder] = nil end
  unload(KEYS[3], day, holder)
end

local pick, loads = nil, {}
if ARGV[6] ~= 'blocked' then
  local daily_max = tonumber(ARGV[7])
  local previous_load = tonumber(redis.call('HGET', KEYS[3], day .. '|' .. previous) or '0')
  if lowest_free_unit(alloc, previous) <= (alloc.c[previous] or 0) and under_daily_max(previous_load, daily_max) then
    pick = previous -- the same professional when they still have a free unit within their capacity
  else
    pick, loads = least_loaded(alloc, KEYS[3], day, ARGV[4], previous, daily_max)
  end
end
local unit = nil
if pick then
  unit = lowest_free_unit(alloc, pick)
  alloc.u[pick] = alloc.u[pick] or {}
  alloc.u[pick][tostring(unit)] = booking
  redis.call('HINCRBY', KEYS[3], day .. '|' .. pick, 1)
end
save_slot(KEYS[1], KEYS[6], KEYS[2], slot, alloc)
if not pick then return {0} end
return {1, pick, unit, redis.call('HGET', KEYS[4], pick) or '{}', cjson.encode(loads)}
