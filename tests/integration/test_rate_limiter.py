"""The gateway's rate limiter on real Redis: N attempts in any window, wherever the window turns."""

import asyncio
import time

import pytest

from common.errors import Problem
from gateway.adapters.ratelimit import RateLimiter


async def test_a_limit_holds_across_the_turn_of_the_clock_and_frees_as_attempts_age(redis, key_prefix):
    """Three attempts a second: the fourth is refused though the wall clock's second turned between
    them (a fixed window would let it through, and as many again), and let through once the first
    attempt is a second old."""
    limiter = RateLimiter(redis, key_prefix)

    async def attempt() -> int | None:
        try:
            await limiter.take("sign-in", "192.0.2.1", {"any": 3}, 1, "attempts")
        except Problem as refused:
            return int(refused.headers["Retry-After"])
        return None

    await asyncio.sleep(1.7 - time.time() % 1)  # 0.7 s into a second, so the next turns mid-test
    first = time.monotonic()
    assert await attempt() is None
    await asyncio.sleep(0.1)
    assert [await attempt(), await attempt()] == [None, None]
    await asyncio.sleep(0.3)  # the wall clock's second has turned
    assert await attempt() == 1
    await asyncio.sleep(max(0.0, first + 1.03 - time.monotonic()))
    assert await attempt() is None  # the first attempt is a second old
    assert await attempt() == 1  # the other two are not yet


async def test_scopes_are_counted_together_and_an_attempt_given_back_frees_its_place(redis, key_prefix):
    limiter = RateLimiter(redis, key_prefix)
    limits = {"account:a@example.org": 2, "any account": 3}
    await limiter.take("sign-in", "192.0.2.2", limits, 60, "failed sign-ins")
    given_back = await limiter.take("sign-in", "192.0.2.2", limits, 60, "failed sign-ins")
    await limiter.give_back(given_back)
    await limiter.take("sign-in", "192.0.2.2", limits, 60, "failed sign-ins")
    with pytest.raises(Problem) as refused:  # the account's two are used; nothing more is counted
        await limiter.take("sign-in", "192.0.2.2", limits, 60, "failed sign-ins")
    assert refused.value.status == 429 and 59 <= int(refused.value.headers["Retry-After"]) <= 60
    other = {"account:b@example.org": 2, "any account": 3}
    await limiter.take("sign-in", "192.0.2.2", other, 60, "failed sign-ins")  # the address's third
    with pytest.raises(Problem):
        await limiter.take("sign-in", "192.0.2.2", other, 60, "failed sign-ins")
    await limiter.take("sign-in", "198.51.100.7", limits, 60, "failed sign-ins")  # another address
