-- Give back one unit of a professional's capacity in a slot.
-- KEYS[1] alloc hash, KEYS[2] remaining hash, KEYS[3] load hash, KEYS[4] capacity hash
-- ARGV[1] slot, ARGV[2] event day (YYYY-MM-DD), ARGV[3] professional id
-- Returns 1 when a unit was given back, 0 when that professional held none.
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local alloc = cjson.decode(raw)
local used = alloc.u[ARGV[3]] or 0
if used <= 0 then return 0 end
if used == 1 then alloc.u[ARGV[3]] = nil else alloc.u[ARGV[3]] = used - 1 end
if next(alloc.c) == nil and next(alloc.u) == nil then
  -- no capacity and no use left (the shift went before the booking): no fields, as after a rebuild
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[4], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(alloc))
  redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
end
local load_field = ARGV[2] .. '|' .. ARGV[3]
local load = tonumber(redis.call('HGET', KEYS[3], load_field) or '0')
if load > 1 then
  redis.call('HINCRBY', KEYS[3], load_field, -1)
elseif load == 1 then
  redis.call('HDEL', KEYS[3], load_field)
end
return 1
