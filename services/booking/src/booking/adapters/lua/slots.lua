-- The rules every script that changes a slot's allocation shares; prepended to each of them when
-- it is registered (a script loaded by EVALSHA cannot call another). A slot's allocation is
-- {"c": {professional: capacity}, "u": {professional: {unit: booking}}}.

-- Every script that changes what availability shows ends its ARGV with the changes channel and the
-- event id: each changed slot is announced there, so that availability's readers drop the answers
-- they keep for it (a channel is not a key: PUBLISH reaches every node of a cluster).
local CHANGES_CHANNEL, CHANGED_EVENT = ARGV[#ARGV - 1], ARGV[#ARGV]
local function announce(slot)
  redis.call('PUBLISH', CHANGES_CHANNEL, CHANGED_EVENT .. ' ' .. slot)
end

local function units_in_use(units)
  local n = 0
  for _ in pairs(units or {}) do n = n + 1 end
  return n
end

-- The professional and unit a booking holds in the slot, or nil.
local function holder_of(alloc, booking)
  for pro, units in pairs(alloc.u) do
    for unit, held_by in pairs(units) do
      if held_by == booking then return pro, unit end
    end
  end
  return nil, nil
end

-- The lowest unit number the professional has free. Within their capacity whenever they have
-- room (fewer units in use than capacity): PostgreSQL checks unit <= capacity.
local function lowest_free_unit(alloc, pro)
  local units = alloc.u[pro] or {}
  local unit = 1
  while units[tostring(unit)] do unit = unit + 1 end
  return unit
end

-- Whether a professional with ``load`` bookings on the event day may take one more (``daily_max``
-- 0: no maximum; the event's max_per_professional_per_day otherwise).
local function under_daily_max(load, daily_max)
  return daily_max == 0 or load < daily_max
end

-- Among the professionals with room (but ``except``) and under the daily maximum, the one with the
-- fewest bookings on the event day; ties broken by the caller's random number. Returns the pick
-- (nil when nobody has room) and the loads of those who had room (the assignment's audit trail).
local function least_loaded(alloc, load_key, day, random, except, daily_max)
  local eligible = {}
  for pro, capacity in pairs(alloc.c) do
    if pro ~= except and capacity - units_in_use(alloc.u[pro]) > 0 then table.insert(eligible, pro) end
  end
  table.sort(eligible) -- pairs() has no order; sorting keeps the pick a function of the inputs
  local loads, fewest, candidates = {}, nil, {}
  for _, pro in ipairs(eligible) do
    local load = tonumber(redis.call('HGET', load_key, day .. '|' .. pro) or '0')
    loads[pro] = load
    if not under_daily_max(load, daily_max) then
      -- at their maximum for the day: no pick, but in the audit trail
    elseif fewest == nil or load < fewest then
      fewest, candidates = load, {pro}
    elseif load == fewest then
      table.insert(candidates, pro)
    end
  end
  if #candidates == 0 then return nil, loads end
  return candidates[math.min(#candidates, math.floor(tonumber(random) * #candidates) + 1)], loads
end

-- One booking fewer for a professional that day; a zero load has no field.
local function unload(load_key, day, pro)
  local field = day .. '|' .. pro
  if tonumber(redis.call('HGET', load_key, field) or '0') > 1 then
    redis.call('HINCRBY', load_key, field, -1)
  else
    redis.call('HDEL', load_key, field)
  end
end

-- Store a slot's allocation with the capacity and remaining that follow from it. A slot with
-- neither capacity nor use has no fields, so the state depends only on the current shifts and
-- bookings (a rebuild from the record gives the very same hashes).
local function save_slot(alloc_key, capacity_key, remaining_key, slot, alloc)
  if next(alloc.c) == nil and next(alloc.u) == nil then
    redis.call('HDEL', alloc_key, slot)
    redis.call('HDEL', capacity_key, slot)
    redis.call('HDEL', remaining_key, slot)
    announce(slot)
    return
  end
  local total, used = 0, 0
  for _, n in pairs(alloc.c) do total = total + n end
  for _, units in pairs(alloc.u) do used = used + units_in_use(units) end
  redis.call('HSET', alloc_key, slot, cjson.encode(alloc))
  redis.call('HSET', capacity_key, slot, total)
  redis.call('HSET', remaining_key, slot, total - used)
  announce(slot)
end


-- A refusal's answer: {0, "remaining,remaining,..."} of the event day's slots (comma-separated in
-- ``day_slots``), so the caller can offer the nearest open ones without another round trip.
local function nobody_has_room(remaining_key, day_slots)
  local fields = {}
  for each in string.gmatch(day_slots, '[^,]+') do fields[#fields + 1] = each end
  if #fields == 0 then return {0, ''} end
  local remaining = redis.call('HMGET', remaining_key, unpack(fields))
  local out = {}
  for i = 1, #fields do out[i] = remaining[i] or '0' end
  return {0, table.concat(out, ',')}
end

-- How many wait for a unit of the slot (the length of its waitlist).
local function waiting_for(waiting_key, slot)
  local raw = redis.call('HGET', waiting_key, slot)
  if not raw then return 0 end
  return #cjson.decode(raw)
end
