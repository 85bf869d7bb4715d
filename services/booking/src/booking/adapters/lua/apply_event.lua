-- Store an event's definition unless a newer one is already applied.
-- KEYS[1] event hash {sequence, doc}
-- ARGV[1] sequence, ARGV[2] doc (JSON), ARGV[3] the changes channel, ARGV[4] the event id
-- Returns 1 when applied, 0 when ignored as older or duplicate, -1 when the event has no counters
-- here (new, or lost with Redis's data): the owner then builds them whole from its record.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local current = tonumber(redis.call('HGET', KEYS[1], 'sequence') or '0')
if current >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'sequence', ARGV[1], 'doc', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4]) -- every day of the event may look different now
return 1
