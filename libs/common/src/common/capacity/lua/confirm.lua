-- The booking is committed: its unit is no longer a hold that may expire.
-- KEYS[1] holds hash, KEYS[2] hold expiry zset
-- ARGV[1] booking id
-- Returns 1 when the hold was there; 0 when it had expired already (reconcile repairs the counters).
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('HDEL', KEYS[1], ARGV[1])
