"""Rate limits kept in Redis, so they hold across gateway instances: fixed one-minute windows."""

import math
import time

from redis.asyncio import Redis

from common.errors import rate_limited


class RateLimiter:
    def __init__(self, redis: Redis, prefix: str, window_seconds: int = 60) -> None:
        self._redis = redis
        self._prefix = prefix
        self._window = window_seconds

    def _key(self, bucket: str, who: str) -> tuple[str, int]:
        window = int(time.time() // self._window)
        retry_after = max(1, math.ceil((window + 1) * self._window - time.time()))
        return f"{self._prefix}:ratelimit:{bucket}:{who}:{window}", retry_after

    async def hit(self, bucket: str, who: str, limit: int, what: str) -> None:
        """Count one more; a 429 problem once ``limit`` is passed in this window."""
        key, retry_after = self._key(bucket, who)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, self._window * 2)
            count, _ = await pipe.execute()
        if count > limit:
            raise rate_limited(retry_after, what)

    async def check(self, bucket: str, who: str, limit: int, what: str) -> None:
        """A 429 problem if ``limit`` was already reached in this window; counts nothing."""
        key, retry_after = self._key(bucket, who)
        if int(await self._redis.get(key) or 0) >= limit:
            raise rate_limited(retry_after, what)
