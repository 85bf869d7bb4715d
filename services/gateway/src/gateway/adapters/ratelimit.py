"""Rate limits kept in Redis, so they hold across gateway instances: fixed windows, checked and
counted in one step (a script), so a burst cannot get past a limit between the check and the count."""

import math
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from common.errors import rate_limited

# Count one attempt in every scope, unless one of them is at its limit already.
# KEYS: one counter per scope (all sharing one {hash tag}); ARGV[1] the window (s); ARGV[1 + i] KEYS[i]'s limit.
# Returns 1 when counted, 0 (nothing counted) when a scope is at its limit.
TAKE = """
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[i + 1]) then return 0 end
end
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, ARGV[1]) end
end
return 1
"""


@dataclass(frozen=True)
class Counted:
    """The counters one attempt went into, to give it back if it turns out not to count."""

    keys: tuple[str, ...]


class RateLimiter:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._take = redis.register_script(TAKE)

    async def take(self, bucket: str, shard: str, limits: dict[str, int], window_seconds: int, what: str) -> Counted:
        """One more attempt in each scope of ``limits`` (scope -> attempts per window), all of them
        under ``shard`` (e.g. the client's address); a 429 problem, nothing counted, when any
        scope has used its attempts in this window."""
        window = int(time.time() // window_seconds)
        retry_after = max(1, math.ceil((window + 1) * window_seconds - time.time()))
        keys = tuple(f"{self._prefix}:ratelimit:{{{bucket}:{shard}}}:{scope}:{window}" for scope in limits)
        if not await self._take(keys=list(keys), args=[window_seconds * 2, *limits.values()]):
            raise rate_limited(retry_after, what)
        return Counted(keys)

    async def give_back(self, counted: Counted) -> None:
        """The attempt does not count after all (a sign-in that succeeded)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in counted.keys:
                pipe.decr(key)
            await pipe.execute()
