-- Give back the unit a booking holds in a slot, wherever it is now (a shift change may have moved it).
-- KEYS[1] alloc hash, KEYS[2] remaining hash, KEYS[3] load hash, KEYS[4] capacity hash,
-- KEYS[5] holds hash, KEYS[6] hold expiry zset, KEYS[7] the attempt's idempotency record
-- ARGV[1] slot, ARGV[2] event day (YYYY-MM-DD), ARGV[3] booking,
-- ARGV[4] "held" to release only while the booking is still an unconfirmed hold (expiry), else ""
-- Returns 1 when a unit was given back, 0 when the booking held none there.
if ARGV[4] == 'held' and redis.call('HEXISTS', KEYS[5], ARGV[3]) == 0 then return 0 end
redis.call('HDEL', KEYS[5], ARGV[3])
redis.call('ZREM', KEYS[6], ARGV[3])
local record = redis.call('GET', KEYS[7])
if record and cjson.decode(record).booking == ARGV[3] and cjson.decode(record).state == 'held' then
  redis.call('DEL', KEYS[7]) -- the attempt failed: a retry with the key starts afresh
end
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local alloc = cjson.decode(raw)
local holder, held_unit
for pro, units in pairs(alloc.u) do
  for unit, booking in pairs(units) do
    if booking == ARGV[3] then holder, held_unit = pro, unit end
  end
end
if not holder then return 0 end
alloc.u[holder][held_unit] = nil
if next(alloc.u[holder]) == nil then alloc.u[holder] = nil end
if next(alloc.c) == nil and next(alloc.u) == nil then
  -- no capacity and no use left (the shift went before the booking): no fields, as after a rebuild
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[4], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(alloc))
  redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
end
local load_field = ARGV[2] .. '|' .. holder
local load = tonumber(redis.call('HGET', KEYS[3], load_field) or '0')
if load > 1 then
  redis.call('HINCRBY', KEYS[3], load_field, -1)
elseif load == 1 then
  redis.call('HDEL', KEYS[3], load_field)
end
return 1
