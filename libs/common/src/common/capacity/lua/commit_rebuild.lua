-- Swap an event's freshly built counters in for the live ones, in one step.
-- KEYS[1] the event's rebuilding flag
-- KEYS[2..] pairs: a built key, then the live key it replaces
-- ARGV[1] the token the rebuild holds the flag with, ARGV[2] the changes channel, ARGV[3] the event id,
-- ARGV[4], ARGV[5] where in KEYS the built event hash and the built shifts hash are (each followed
-- by its live key); absent when only giving the flag up
-- Returns 1 when swapped; 0 when the flag is not ours any more (expired or taken); -1 when the
-- record the counters were built from is behind Redis (the capacity owner applies a change to Redis
-- before its transaction commits, and a rebuild from before that commit would undo it). Nothing
-- changes unless 1.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[4] then
  local event, shifts = tonumber(ARGV[4]), tonumber(ARGV[5])
  local function sequence(raw) return raw and tonumber(cjson.decode(raw).sequence) or -1 end
  if tonumber(redis.call('HGET', KEYS[event + 1], 'sequence') or '-1') > tonumber(redis.call('HGET', KEYS[event], 'sequence') or '-1') then
    return -1
  end
  local live = redis.call('HGETALL', KEYS[shifts + 1])
  for i = 1, #live, 2 do
    if sequence(live[i + 1]) > sequence(redis.call('HGET', KEYS[shifts], live[i])) then return -1 end
  end
end
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
