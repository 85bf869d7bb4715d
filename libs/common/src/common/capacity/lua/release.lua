-- Give back the unit a booking holds: only when that unit is still the booking's.
-- KEYS[1] alloc hash, KEYS[2] remaining hash, KEYS[3] load hash, KEYS[4] capacity hash,
-- KEYS[5] holds hash, KEYS[6] hold expiry zset
-- ARGV[1] slot, ARGV[2] event day (YYYY-MM-DD), ARGV[3] professional, ARGV[4] unit, ARGV[5] booking,
-- ARGV[6] "held" to release only while the booking is still an unconfirmed hold (expiry), else ""
-- Returns 1 when the unit was given back, 0 when it was not the booking's (any more).
if ARGV[6] == 'held' and redis.call('HEXISTS', KEYS[5], ARGV[5]) == 0 then return 0 end
redis.call('HDEL', KEYS[5], ARGV[5])
redis.call('ZREM', KEYS[6], ARGV[5])
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local alloc = cjson.decode(raw)
local units = alloc.u[ARGV[3]]
if not units or units[ARGV[4]] ~= ARGV[5] then return 0 end
units[ARGV[4]] = nil
if next(units) == nil then alloc.u[ARGV[3]] = nil end
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
