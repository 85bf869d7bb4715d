-- The booking is committed: its unit is no longer a hold that may expire, and a retry with its
-- Idempotency-Key is answered with it.
-- KEYS[1] holds hash, KEYS[2] hold expiry zset, KEYS[3] the idempotency record
-- ARGV[1] booking id, ARGV[2] the record to keep ("" when the client sent no key), ARGV[3] its lifetime (s)
-- Returns 1 when the hold was there; 0 when it had expired already (reconcile repairs the counters).
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] ~= '' then redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[3]) end
return redis.call('HDEL', KEYS[1], ARGV[1])
