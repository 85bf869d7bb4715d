-- Attempt limits as sliding logs (the booking attempts in take.lua, the gateway's sign-in and
-- registration limits): per limit a sorted set of the attempts still inside the window
-- (attempt -> ms), so a limit of N a window is N in any window, with no edge to straddle.
-- Counts ``member`` at ``now`` (ms) in every log of ``keys`` unless one of them already holds its
-- limit (``limits[i]`` for ``keys[i]``). Returns 0 when counted; else, nothing counted, the ms
-- until the fullest log has room again (at least 1).
local function admit(keys, limits, now, window, member)
  local wait = 0
  for i, key in ipairs(keys) do
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    if redis.call('ZCARD', key) >= limits[i] then
      local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
      wait = math.max(wait, tonumber(oldest[2]) + window - now)
    end
  end
  if wait > 0 then return wait end
  for _, key in ipairs(keys) do
    redis.call('ZADD', key, now, member)
    redis.call('PEXPIRE', key, window)
  end
  return 0
end

