-- Swap an event's freshly built counters in for the live ones, in one step.
-- KEYS[1] the event's rebuilding flag
-- KEYS[2..] pairs: a built key, then the live key it replaces
-- ARGV[1] the token the rebuild holds the flag with, ARGV[2] the changes channel, ARGV[3] the event id
-- Returns 1 when swapped; 0 when the flag is not ours any more (expired or taken): nothing changes.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 2, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('RENAME', KEYS[i], KEYS[i + 1])
  else
    redis.call('DEL', KEYS[i + 1])
  end
end
redis.call('DEL', KEYS[1])
if #KEYS > 1 then redis.call('PUBLISH', ARGV[2], ARGV[3]) end -- swapped: every day may look different
return 1
