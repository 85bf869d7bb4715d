-- Move a booking's unit to another professional with open capacity in the same slot.
-- KEYS[1] alloc hash, KEYS[2] load hash, KEYS[3] professionals hash
-- ARGV[1] slot, ARGV[2] event day (YYYY-MM-DD), ARGV[3] booking, ARGV[4] its professional,
-- ARGV[5] its unit, ARGV[6] random number in [0, 1) chosen by the caller
-- Returns {1, professional, unit, professional JSON, eligible JSON} when moved; {0} when no other
-- professional has room (the booking keeps its unit, if it still has one).
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return {0} end
local alloc = cjson.decode(raw)

local function in_use(pro)
  local n = 0
  for _ in pairs(alloc.u[pro] or {}) do n = n + 1 end
  return n
end

local eligible = {}
for pro, capacity in pairs(alloc.c) do
  if pro ~= ARGV[4] and capacity - in_use(pro) > 0 then table.insert(eligible, pro) end
end
if #eligible == 0 then return {0} end
table.sort(eligible)
local loads, fewest, candidates = {}, nil, {}
for _, pro in ipairs(eligible) do
  local load = tonumber(redis.call('HGET', KEYS[2], ARGV[2] .. '|' .. pro) or '0')
  loads[pro] = load
  if fewest == nil or load < fewest then
    fewest, candidates = load, {pro}
  elseif load == fewest then
    table.insert(candidates, pro)
  end
end
local pick = candidates[math.min(#candidates, math.floor(tonumber(ARGV[6]) * #candidates) + 1)]

local units = alloc.u[pick] or {}
local unit = 1
while units[tostring(unit)] do unit = unit + 1 end
units[tostring(unit)] = ARGV[3]
alloc.u[pick] = units

local old = alloc.u[ARGV[4]]
if old and old[ARGV[5]] == ARGV[3] then
  old[ARGV[5]] = nil
  if next(old) == nil then alloc.u[ARGV[4]] = nil end
  local old_load = ARGV[2] .. '|' .. ARGV[4]
  if tonumber(redis.call('HGET', KEYS[2], old_load) or '0') > 1 then
    redis.call('HINCRBY', KEYS[2], old_load, -1)
  else
    redis.call('HDEL', KEYS[2], old_load)
  end
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(alloc))
redis.call('HINCRBY', KEYS[2], ARGV[2] .. '|' .. pick, 1)
return {1, pick, unit, redis.call('HGET', KEYS[3], pick) or '{}', cjson.encode(loads)}
