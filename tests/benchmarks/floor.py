"""The floor: the least work any correct Redis + Lua booking can do, to measure the product against.

One aiohttp process, no auth, no gateway hop: parse the body, one Lua take (the product's
capacity store, on counters of its own key prefix), one asyncpg statement writing the booking row
and its outbox row (one implicit transaction, one round trip). Nothing is published, no hold is
confirmed, nothing else is checked. It lives with the benchmarks, never in the product.

    python -m tests.benchmarks.floor [serve|prepare]
"""

import asyncio
import random
import sys
from datetime import datetime
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import orjson
from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis

import booking
from booking.adapters.capacity import CapacityStore, Taken
from common.db import create_pool
from common.settings import ServiceSettings
from common.web import serve

BOOKING_AND_OUTBOX = """
WITH booked AS (
    INSERT INTO bookings (id, event_id, event_name, slot_start, slot_end, status, client_id, client_name,
                          client_timezone, professional_id, professional_name, professional_timezone, unit,
                          assignment, request_fingerprint, sequence)
    VALUES ($1, $2, 'floor', $3, $4, 'confirmed', $5, 'floor', 'UTC', $6, 'floor', 'UTC', $7, '{}', '', 1)
    RETURNING id
)
INSERT INTO outbox (event_id, exchange, envelope) SELECT $8, 'bookings.events', $9::jsonb FROM booked
"""


class Settings(ServiceSettings):
    service_name: str = "floor"
    http_port: int = 8089
    database_url: str = "postgresql://postgres@127.0.0.1:5432/floor"


STORE = web.AppKey("store", CapacityStore)
POOL = web.AppKey("pool", asyncpg.Pool)


async def book(request: web.Request) -> web.Response:
    body = orjson.loads(await request.read())
    store = request.app[STORE]
    known = await store.current_event(UUID(body["event_id"]))
    slot = known.schedule.slot_starting_at(datetime.fromisoformat(body["start"]))
    booking_id = uuid4()
    taken = await store.take(known, slot, random.random(), booking_id, hold_seconds=3600)
    if not isinstance(taken, Taken):
        return web.Response(status=409, body=b'{"code":"slot_unavailable"}', content_type="application/json")
    envelope = {"type": "booking.confirmed", "booking": str(booking_id)}  # the pool encodes JSON itself
    await request.app[POOL].execute(
        BOOKING_AND_OUTBOX, booking_id, known.data.id, slot.start, slot.end, uuid4(), taken.professional.id, taken.unit,
        uuid4(), envelope,
    )  # fmt: skip
    return web.Response(
        status=201, body=orjson.dumps({"id": str(booking_id), "unit": taken.unit}), content_type="application/json"
    )


async def ready(request: web.Request) -> web.Response:
    return web.json_response({"status": "ready"})


def create_app(settings: Settings) -> web.Application:
    app = web.Application()

    async def resources(app: web.Application):
        # Bounded and blocking, as the product's: the default pool refuses a burst past its size.
        pool = BlockingConnectionPool.from_url(settings.redis_url, max_connections=64, timeout=5, decode_responses=True)
        redis = Redis.from_pool(pool)
        app[STORE] = CapacityStore(redis, settings.redis_key_prefix)
        app[POOL] = await create_pool(settings.database_url)
        yield
        await app[POOL].close()
        await redis.aclose()

    app.cleanup_ctx.append(resources)
    app.router.add_post("/bookings", book)
    app.router.add_get("/readyz", ready)
    return app


if __name__ == "__main__":
    settings = Settings()
    if sys.argv[1:] == ["prepare"]:
        from common.migrations import migrate

        asyncio.run(migrate(Path(booking.__file__).parent, settings.database_url))
    else:
        serve(create_app(settings), settings)
