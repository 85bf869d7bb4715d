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
from sqlalchemy.ext.asyncio import AsyncEngine

from booking.adapters.db import OUTBOX
from booking.owner import CapacityOwner
from booking.service import BookingService
from common.capacity import CapacityStore
from common.db import create_engine, create_pool, session_factory
from common.envelope import BOOKINGS_EXCHANGE
from common.migrations import migrate
from common.outbox import Outbox


@dataclass
class BookingParts:
    service: BookingService
    owner: CapacityOwner
    store: CapacityStore
    pool: asyncpg.Pool
    engine: AsyncEngine
    database_url: str


@asynccontextmanager
async def booking_parts(
    servers,
    redis: Redis,
    key_prefix: str,
    hold_seconds: float = 30,
    via_port: int | None = None,
    deadline_seconds: float = 3.5,
) -> AsyncIterator[BookingParts]:
    """``via_port``: reach PostgreSQL through a proxy listening there on 127.0.0.1."""
    url = servers.database_url(f"booking_{uuid.uuid4().hex[:8]}")
    await migrate(Path(importlib.util.find_spec("booking").submodule_search_locations[0]), url)
    if via_port is not None:
        parts = urlsplit(url)
        url = urlunsplit(parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{via_port}"))
    store = CapacityStore(redis, key_prefix)
    engine = create_engine(url)
    pool = await create_pool(url)
    outbox = Outbox(OUTBOX, BOOKINGS_EXCHANGE, "test")
    sessions = session_factory(engine)
    try:
        yield BookingParts(
            BookingService(sessions, pool, store, outbox, lambda: None, hold_seconds, deadline_seconds),
            CapacityOwner(sessions, store, outbox, lambda: None),
            store,
            pool,
            engine,
            url,
        )
    finally:
        await pool.close()
        await engine.dispose()
