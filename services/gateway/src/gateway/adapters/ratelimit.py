"""Rate limits kept in Redis, so they hold across gateway instances: a sliding log per scope (the
times of the attempts still inside the window), checked and counted in one step (a script), so a
burst cannot get past a limit between the check and the count, nor at a window's edge: a limit of
N a minute is N in any 60 s, not N before and N after the turn of each minute."""

import math
import uuid
from dataclasses import dataclass

from redis.asyncio import Redis

from common.counters import lua_source
from common.errors import rate_limited
from common.metrics import LIMITS_HIT

# One more attempt in every scope, by the sliding-log rule the booking attempts use
# (sliding_log.lua). Time is Redis's own clock, one for every gateway instance.
# KEYS: one log per scope (all sharing one {hash tag}); ARGV[1] the window (ms); ARGV[2] this
# attempt's id; ARGV[2 + i] KEYS[i]'s limit. Returns 0 when counted; else the ms to wait.
TAKE = (
    lua_source("common", "sliding_log.lua")
    + """
local clock = redis.call('TIME')
local limits = {}
for i = 1, #KEYS do limits[i] = tonumber(ARGV[i + 2]) end
return admit(KEYS, limits, tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000), tonumber(ARGV[1]), ARGV[2])
"""
)


@dataclass(frozen=True)
class Counted:
    """The logs one attempt went into, to take it out again if it turns out not to count."""

    keys: tuple[str, ...]
    attempt: str


class RateLimiter:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._take = redis.register_script(TAKE)

    async def take(self, bucket: str, shard: str, limits: dict[str, int], window_seconds: int, what: str) -> Counted:
        """One more attempt in each scope of ``limits`` (scope -> attempts per window), all of them
        under ``shard`` (e.g. the client's address); a 429 problem, nothing counted, when any
        scope has had its attempts in the last ``window_seconds``."""
        keys = tuple(f"{self._prefix}:ratelimit:{{{bucket}:{shard}}}:{scope}" for scope in limits)
        attempt = uuid.uuid4().hex
        wait_ms = await self._take(keys=list(keys), args=[window_seconds * 1000, attempt, *limits.values()])
        if wait_ms:
            LIMITS_HIT.labels(bucket.replace("-", "_")).inc()
            raise rate_limited(max(1, math.ceil(wait_ms / 1000)), what)
        return Counted(keys, attempt)

    async def give_back(self, counted: Counted) -> None:
        """The attempt does not count after all (a sign-in that succeeded)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in counted.keys:
                pipe.zrem(key, counted.attempt)
            await pipe.execute()
