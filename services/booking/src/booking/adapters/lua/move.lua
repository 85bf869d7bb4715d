-- Move a confirmed booking to another slot in one step: the unit it holds in its slot given back
-- and one in the new slot taken, its own professional's when they have room there (and are under
-- the daily maximum), else the professional with room and the fewest bookings that event day.
-- Never both held, never neither: when nobody has room in the new slot, nothing changes.
-- KEYS[1] event hash, KEYS[2] alloc hash, KEYS[3] remaining hash, KEYS[4] load hash,
-- KEYS[5] professionals hash, KEYS[6] capacity hash, KEYS[7] waiting hash (a slot anyone waits
-- for is full to a move as to a booking)
-- ARGV[1] event sequence the caller checked the slots against, ARGV[2] the booking's slot now
-- ("" when it holds no unit: needs_reschedule), ARGV[3] its event day, ARGV[4] the new slot,
-- ARGV[5] its event day, ARGV[6] the booking, ARGV[7] its professional in the record,
-- ARGV[8] random number in [0, 1), ARGV[9] bookings one professional may take per event day
-- (0: no maximum), ARGV[10] the new slot's event day's slots, comma-separated (for a refusal),
-- ARGV[11] the changes channel, ARGV[12] the event id (slots.lua's announce)
-- Returns {1, professional, unit, professional JSON, eligible JSON} where it now is (already there:
-- the same, with no eligible list); {0, "remaining,..." of the new day's slots} when nobody has
-- room; {-1} when the event changed since the caller checked (or its counters are gone).
local booking, new_slot, new_day = ARGV[6], ARGV[4], ARGV[5]
if redis.call('HGET', KEYS[1], 'sequence') ~= ARGV[1] then return {-1} end

local raw = redis.call('HGET', KEYS[2], new_slot)
local alloc = raw and cjson.decode(raw) or {c = {}, u = {}}
local already, already_unit = holder_of(alloc, booking)
if already then -- moved by an earlier attempt whose answer was lost: where it is
  return {1, already, tonumber(already_unit), redis.call('HGET', KEYS[5], already) or '{}', '{}'}
end

local function full() return nobody_has_room(KEYS[3], ARGV[10]) end
if waiting_for(KEYS[7], new_slot) > 0 then return full() end

-- Its unit in the old slot, given back first (inside this step nobody sees it free), so that a
-- move within one day counts against the professional's daily maximum once.
local old_slot, old_day, old_alloc, holder, held_unit = ARGV[2], ARGV[3], nil, nil, nil
if old_slot ~= '' then
  local old_raw = redis.call('HGET', KEYS[2], old_slot)
  if old_raw then
    old_alloc = cjson.decode(old_raw)
    holder, held_unit = holder_of(old_alloc, booking)
  end
end
if holder then unload(KEYS[4], old_day, holder) end

local daily_max = tonumber(ARGV[9])
local preferred = holder or ARGV[7]
local preferred_load = tonumber(redis.call('HGET', KEYS[4], new_day .. '|' .. preferred) or '0')
local pick, loads = nil, {}
if (alloc.c[preferred] or 0) - units_in_use(alloc.u[preferred]) > 0 and under_daily_max(preferred_load, daily_max) then
  pick = preferred -- the same professional when they have room in the new slot
else
  pick, loads = least_loaded(alloc, KEYS[4], new_day, ARGV[8], nil, daily_max)
end

if pick == nil then
  if holder then redis.call('HINCRBY', KEYS[4], old_day .. '|' .. holder, 1) end -- as it was
  return full()
end

if holder then
  old_alloc.u[holder][held_unit] = nil
  if next(old_alloc.u[holder]) == nil then old_alloc.u[holder] = nil end
  save_slot(KEYS[2], KEYS[6], KEYS[3], old_slot, old_alloc)
end
local unit = lowest_free_unit(alloc, pick)
alloc.u[pick] = alloc.u[pick] or {}
alloc.u[pick][tostring(unit)] = booking
save_slot(KEYS[2], KEYS[6], KEYS[3], new_slot, alloc)
redis.call('HINCRBY', KEYS[4], new_day .. '|' .. pick, 1)
return {1, pick, unit, redis.call('HGET', KEYS[5], pick) or '{}', cjson.encode(loads)}
