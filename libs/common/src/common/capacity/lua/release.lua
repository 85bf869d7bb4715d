-- Give back one unit of a professional's capacity in a slot.
-- KEYS[1] alloc hash, KEYS[2] remaining hash, KEYS[3] load hash
-- ARGV[1] slot, ARGV[2] event day (YYYY-MM-DD), ARGV[3] professional id
-- Returns 1 when a unit was given back, 0 when that professional held none.
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local alloc = cjson.decode(raw)
local used = alloc.u[ARGV[3]] or 0
if used <= 0 then return 0 end
if used == 1 then alloc.u[ARGV[3]] = nil else alloc.u[ARGV[3]] = used - 1 end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(alloc))
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
local load_field = ARGV[2] .. '|' .. ARGV[3]
if tonumber(redis.call('HGET', KEYS[3], load_field) or '0') > 0 then
  redis.call('HINCRBY', KEYS[3], load_field, -1)
end
return 1
