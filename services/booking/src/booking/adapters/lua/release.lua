-- Give back the unit a booking holds in a slot, wherever it is now (a shift change may have moved it).
-- KEYS[1] alloc hash, KEYS[2] remaining hash, KEYS[3] load hash, KEYS[4] capacity hash,
-- KEYS[5] holds hash, KEYS[6] hold expiry zset, KEYS[7] the attempt's idempotency record
-- ARGV[1] slot, ARGV[2] event day (YYYY-MM-DD), ARGV[3] booking,
-- ARGV[4] "held" to release only while the booking is still an unconfirmed hold (expiry), else "",
-- ARGV[5] the changes channel, ARGV[6] the event id (slots.lua's announce)
-- Returns 1 when a unit was given back, 0 when the booking held none there.
if ARGV[4] == 'held' and redis.call('HEXISTS', KEYS[5], ARGV[3]) == 0 then return 0 end
redis.call('HDEL', KEYS[5], ARGV[3])
redis.call('ZREM', KEYS[6], ARGV[3])
local record = redis.call('GET', KEYS[7])
record = record and cjson.decode(record)
if record and record.booking == ARGV[3] and record.state == 'held' then
  redis.call('DEL', KEYS[7]) -- the attempt failed: a retry with the key starts afresh
end
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local alloc = cjson.decode(raw)
local holder, held_unit = holder_of(alloc, ARGV[3])
if not holder then return 0 end
alloc.u[holder][held_unit] = nil
if next(alloc.u[holder]) == nil then alloc.u[holder] = nil end
save_slot(KEYS[1], KEYS[4], KEYS[2], ARGV[1], alloc)
unload(KEYS[3], ARGV[2], holder)
return 1
