-- Read a day's counters in one call: the event's sequence, then "capacity:remaining" per slot.
-- KEYS[1] event hash {sequence, doc}, KEYS[2] capacity hash, KEYS[3] remaining hash
-- ARGV[1] the day's slots, comma-separated
-- Returns {sequence or false, "c:r,c:r,..."} with 0 for a slot that has no fields.
local fields = {}
for slot in string.gmatch(ARGV[1], '[^,]+') do fields[#fields + 1] = slot end
local capacity = redis.call('HMGET', KEYS[2], unpack(fields))
local remaining = redis.call('HMGET', KEYS[3], unpack(fields))
local out = {}
for i = 1, #fields do out[i] = (capacity[i] or '0') .. ':' .. (remaining[i] or '0') end
return {redis.call('HGET', KEYS[1], 'sequence'), table.concat(out, ',')}
