"""People's current profiles (name, email, timezone), so that a change takes effect on the next
request whatever token the client holds (SPEC §4).

A token carries the profile it was issued with. When a profile changes, the gateway (its owner)
keeps the new one in Redis for as long as a token issued before the change can live, and
announces the change; a service reads a person's stored profile once and keeps it until the next
announcement about them. Nothing is kept while the announcements are not followed.
"""

import asyncio
import logging
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError

from common.announcements import announcements
from common.auth import Identity

log = logging.getLogger(__name__)

KEPT_AT_MOST = 100_000


class Profiles:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self.channel = f"{prefix}:profiles:changed"
        self._kept: dict[UUID, Identity | None] = {}  # None: nothing stored, the token's own is current
        self._following = False
        self._announced = 0  # announcements so far: a read that one overtook is used, not kept

    def _key(self, person: UUID) -> str:
        return f"{self._prefix}:profile:{person}"

    # -- the gateway's side ----------------------------------------------------------------------

    async def changed(self, who: Identity, keep_seconds: int) -> None:
        """``who`` is the person's profile now: kept for ``keep_seconds`` (a token's lifetime, after
        which no token from before the change is left), and announced."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(who.id), who.model_dump_json(), ex=keep_seconds)
            pipe.publish(self.channel, str(who.id))
            await pipe.execute()

    async def forget(self, person: UUID) -> None:
        """The change did not happen after all (its transaction did not commit)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key(person))
            pipe.publish(self.channel, str(person))
            await pipe.execute()

    # -- every service's side --------------------------------------------------------------------

    async def current(self, token_says: Identity) -> Identity:
        """The caller with their profile as it is now (their role and id as the token says)."""
        stored = self._kept.get(token_says.id, ...) if self._following else ...
        if stored is ...:
            announced = self._announced
            raw = await self._redis.get(self._key(token_says.id))
            stored = Identity.model_validate_json(raw) if raw else None
            if self._following and self._announced == announced:
                if len(self._kept) >= KEPT_AT_MOST:
                    self._kept.clear()
                self._kept[token_says.id] = stored
        if stored is None:
            return token_says
        return token_says.model_copy(update={"name": stored.name, "email": stored.email, "timezone": stored.timezone})

    async def follow(self, retry_seconds: float = 1.0) -> None:
        """Drop what was kept about a person whenever a change of theirs is announced; keep nothing
        while not subscribed (an announcement may be missed then)."""
        while True:
            try:
                async for person in announcements(self._redis, self.channel):
                    if person is None:  # subscribed: from now on no change is missed
                        self._kept.clear()
                        self._following = True
                    else:
                        self._announced += 1
                        self._kept.pop(UUID(person), None)
            except (RedisError, OSError) as exc:
                log.warning("not following profile changes (%r); reading them afresh until then", exc)
            finally:
                self._following = False
                self._announced += 1
                self._kept.clear()
            await asyncio.sleep(retry_seconds)
