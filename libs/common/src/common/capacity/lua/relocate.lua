-- Find a confirmed booking a unit within someone's capacity in its slot, after capacity was taken
-- away under it: its own professional's lowest free unit if they still have room, else the
-- professional with room and the fewest bookings that event day (ties by the caller's random
-- number), else none (the unit is given back and the booking is to be flagged).
-- Idempotent: a booking already on a unit within its professional's capacity stays where it is.
-- KEYS[1] alloc hash, KEYS[2] remaining hash, KEYS[3] load hash, KEYS[4] professionals hash,
-- KEYS[5] the event's rebuilding flag, KEYS[6] capacity hash
-- ARGV[1] slot, ARGV[2] event day, ARGV[3] booking, ARGV[4] random number in [0, 1),
-- ARGV[5] the booking's professional in the record, ARGV[6] "blocked" when nobody may hold the slot
-- Returns {1, professional, unit, professional JSON, eligible JSON} where it now is;
-- {0} when nobody has room (it holds nothing now); {-2} while the event's counters are rebuilt.
local slot, day, booking = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', KEYS[5]) == 1 then return {-2} end
local raw = redis.call('HGET', KEYS[1], slot)
local alloc = raw and cjson.decode(raw) or {c = {}, u = {}}

local function count(units)
  local n = 0
  for _ in pairs(units or {}) do n = n + 1 end
  return n
end

local holder, held_unit = nil, nil
for pro, units in pairs(alloc.u) do
  for unit, b in pairs(units) do
    if b == booking then holder, held_unit = pro, unit end
  end
end
if holder and ARGV[6] ~= 'blocked' and tonumber(held_unit) <= (alloc.c[holder] or 0) then
  return {1, holder, tonumber(held_unit), redis.call('HGET', KEYS[4], holder) or '{}', '{}'}
end
local previous = holder or ARGV[5]
if holder then
  alloc.u[holder][held_unit] = nil
  if next(alloc.u[holder]) == nil then alloc.u[holder] = nil end
  local field = day .. '|' .. holder
  if tonumber(redis.call('HGET', KEYS[3], field) or '0') > 1 then
    redis.call('HINCRBY', KEYS[3], field, -1)
  else
    redis.call('HDEL', KEYS[3], field)
  end
end

-- A free unit within a professional's capacity: the lowest number not in use, if it is within it.
local function free_unit(pro)
  local units = alloc.u[pro] or {}
  local unit = 1
  while units[tostring(unit)] do unit = unit + 1 end
  if unit <= (alloc.c[pro] or 0) then return unit end
  return nil
end

local pick, loads = nil, {}
if ARGV[6] ~= 'blocked' then
  if free_unit(previous) then
    pick = previous -- the same professional when they still have room
  else
    local eligible = {}
    for pro, capacity in pairs(alloc.c) do
      if pro ~= previous and capacity - count(alloc.u[pro]) > 0 and free_unit(pro) then table.insert(eligible, pro) end
    end
    table.sort(eligible)
    local fewest, candidates = nil, {}
    for _, pro in ipairs(eligible) do
      local load = tonumber(redis.call('HGET', KEYS[3], day .. '|' .. pro) or '0')
      loads[pro] = load
      if fewest == nil or load < fewest then
        fewest, candidates = load, {pro}
      elseif load == fewest then
        table.insert(candidates, pro)
      end
    end
    if #candidates > 0 then
      pick = candidates[math.min(#candidates, math.floor(tonumber(ARGV[4]) * #candidates) + 1)]
    end
  end
end

local unit = nil
if pick then
  unit = free_unit(pick)
  alloc.u[pick] = alloc.u[pick] or {}
  alloc.u[pick][tostring(unit)] = booking
  redis.call('HINCRBY', KEYS[3], day .. '|' .. pick, 1)
end
-- Capacity and remaining follow from the allocation; a slot with neither loses its fields.
local total, used = 0, 0
for _, n in pairs(alloc.c) do total = total + n end
for _, units in pairs(alloc.u) do used = used + count(units) end
if next(alloc.c) == nil and next(alloc.u) == nil then
  redis.call('HDEL', KEYS[1], slot)
  redis.call('HDEL', KEYS[6], slot)
  redis.call('HDEL', KEYS[2], slot)
else
  redis.call('HSET', KEYS[1], slot, cjson.encode(alloc))
  redis.call('HSET', KEYS[6], slot, total)
  redis.call('HSET', KEYS[2], slot, total - used)
end
if not pick then return {0} end
return {1, pick, unit, redis.call('HGET', KEYS[4], pick) or '{}', cjson.encode(loads)}
