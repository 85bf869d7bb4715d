"""The booking service's parts, wired as its app wires them, on a database of their own: for tests
that call the use cases directly, where HTTP cannot make requests collide reliably."""

import importlib.util
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from redis.asyncio import Redis

from availability.adapters.counters import Counters
from booking.adapters.capacity import CapacityStore
from booking.adapters.counters import UnitInUse
from booking.adapters.repository import Repository, units_of_work
from booking.handlers.messages import subscriptions
from booking.owner import CapacityOwner
from booking.service import BookingService
from booking.waitlist import Offers, WaitlistService
from common.db import create_pool
from common.events import Event
from common.migrations import migrate


@dataclass
class BookingParts:
    service: BookingService
    owner: CapacityOwner
    store: CapacityStore
    pool: asyncpg.Pool
    database_url: str
    counters: Counters  # what availability reads
    offers: Offers
    waitlist: WaitlistService

    async def apply(self, change: Event) -> None:
        """A shift or event change, delivered to the owner as its consumer delivers it."""
        await subscriptions(self.owner)[type(change)](change)

    async def confirmed_units(self, event_id) -> list[UnitInUse]:
        """The units the record's confirmed bookings hold, as a rebuild reads them."""
        async with self.pool.acquire() as connection:
            return await Repository(connection).units_held(event_id)


@asynccontextmanager
async def booking_parts(
    servers,
    redis: Redis,
    key_prefix: str,
    hold_seconds: float = 30,
    via_port: int | None = None,
    deadline_seconds: float = 3.5,
    attempts_per_minute: int = 0,
) -> AsyncIterator[BookingParts]:
    """``via_port``: reach PostgreSQL through a proxy listening there on 127.0.0.1."""
    url = servers.database_url(f"booking_{uuid.uuid4().hex[:8]}")
    await migrate(Path(importlib.util.find_spec("booking").submodule_search_locations[0]), url)
    if via_port is not None:
        parts = urlsplit(url)
        url = urlunsplit(parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{via_port}"))
    store = CapacityStore(redis, key_prefix)
    await store.mark_built()  # as the owner marks it once it has built every event's counters
    pool = await create_pool(url)
    units = units_of_work(pool, wake_relay=lambda: None)
    offers = Offers(units, store)
    service = BookingService(units, store, hold_seconds, deadline_seconds, attempts_per_minute, offers.make)
    try:
        yield BookingParts(
            service,
            CapacityOwner(units, store, offers),
            store,
            pool,
            url,
            Counters(redis, key_prefix),
            offers,
            WaitlistService(units, store, service, offers, "test-claim-link-secret"),
        )
    finally:
        await pool.close()
