"""Announcements on a Redis channel: what changed, told as it changes, to every process following.

Redis pub/sub keeps nothing for a subscriber that was away, so a follower learns when it is
subscribed (from then on nothing is missed until the iterator raises) and must forget what it kept
whenever it is not."""

from collections.abc import AsyncIterator

from redis.asyncio import Redis


async def announcements(redis: Redis, channel: str) -> AsyncIterator[str | None]:
    """Each message published on ``channel``, as it comes; None first, once subscribed."""
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(channel)
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is None:
                continue
            if message["type"] == "subscribe":
                yield None
            elif message["type"] == "message":
                yield message["data"]
