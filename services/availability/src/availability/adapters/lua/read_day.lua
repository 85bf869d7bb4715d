-- Read a day's counters in one call: the event's sequence, then "capacity:remaining" per slot.
-- KEYS[1] event hash {sequence, doc}, KEYS[2] capacity hash, KEYS[3] remaining hash,
-- KEYS[4] alloc hash, KEYS[5] load hash (read only under a daily maximum), KEYS[6] waiting hash
-- ARGV[1] the day's slots, comma-separated, ARGV[2] bookings one professional may take per event
-- day (0: no maximum), ARGV[3] each slot's event day, comma-separated (with a maximum)
-- Returns {sequence or false, "c:r,c:r,..."} with 0 for a slot that has no fields. Under a daily
-- maximum a slot's remaining counts only the professionals below it: one whose only free units
-- belong to professionals at their maximum is full (the take script picks nobody there either).
-- A unit of a slot someone waits for is theirs (offered next), so it does not count either.
local fields = {}
for slot in string.gmatch(ARGV[1], '[^,]+') do fields[#fields + 1] = slot end
local capacity = redis.call('HMGET', KEYS[2], unpack(fields))
local remaining = redis.call('HMGET', KEYS[3], unpack(fields))
local daily_max = tonumber(ARGV[2])
if daily_max > 0 then
  local days = {}
  for day in string.gmatch(ARGV[3], '[^,]+') do days[#days + 1] = day end
  local allocs = redis.call('HMGET', KEYS[4], unpack(fields))
  for i = 1, #fields do
    if allocs[i] then
      local alloc, left = cjson.decode(allocs[i]), 0
      for pro, units in pairs(alloc.c) do
        local used = 0
        for _ in pairs(alloc.u[pro] or {}) do used = used + 1 end
        local load = tonumber(redis.call('HGET', KEYS[5], days[i] .. '|' .. pro) or '0')
        if load < daily_max and units > used then left = left + units - used end
      end
      remaining[i] = tostring(left)
    end
  end
end
local waiting = redis.call('HMGET', KEYS[6], unpack(fields))
for i = 1, #fields do
  if waiting[i] then remaining[i] = tostring(math.max(0, tonumber(remaining[i] or '0') - #cjson.decode(waiting[i]))) end
end
local out = {}
for i = 1, #fields do out[i] = (capacity[i] or '0') .. ':' .. (remaining[i] or '0') end
return {redis.call('HGET', KEYS[1], 'sequence'), table.concat(out, ',')}
