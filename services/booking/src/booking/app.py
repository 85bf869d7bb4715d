from collections.abc import AsyncIterator
from uuid import UUID

from aiohttp import web

from booking.adapters.repository import units_of_work
from booking.app_keys import OWNER, SERVICE
from booking.handlers.http import api
from booking.handlers.messages import subscriptions
from booking.owner import CapacityOwner
from booking.service import BookingService
from booking.settings import Settings
from common import web as common_web
from common.capacity import CapacityStore


def create_app(settings: Settings) -> web.Application:
    app = common_web.service_app(settings)

    async def wire(app: web.Application) -> AsyncIterator[None]:
        store = CapacityStore(app[common_web.REDIS], settings.redis_key_prefix)
        units = units_of_work(app[common_web.PG_POOL], app[common_web.RELAY].wake)
        app[SERVICE] = BookingService(
            units, store, settings.hold_seconds, settings.deadline_seconds, settings.bookings_per_minute
        )
        app[OWNER] = CapacityOwner(units, store)
        yield

    async def consume_shift_changes(app: web.Application) -> AsyncIterator[None]:
        await app[common_web.BROKER].subscribe(settings.queue_name, subscriptions(app[OWNER]), settings.consumer_prefetch)
        yield

    app.cleanup_ctx.extend(
        [
            common_web.pg_pool(settings.database_url),
            common_web.redis_client(settings.redis_url, retry_lost_connections=True),  # every script is idempotent
            common_web.profiles(settings),  # a booking records its client as they are now
            common_web.broker(settings.rabbitmq_url, settings.service_name),
            common_web.outbox(settings.outbox_poll_seconds),
            wire,
            consume_shift_changes,
        ]
    )
    common_web.add_endpoints(app, "booking", api)
    return app


async def audit_command(settings: Settings, args: list[str]) -> None:
    """``python -m booking audit [--repair] [EVENT_ID]``: from PostgreSQL alone, every confirmed
    booking within its professional's active capacity; ``--repair`` moves or flags what is not
    (it needs Redis too). Exits 1 when the record was not clean."""
    import orjson
    from redis.asyncio import Redis

    from common.db import create_pool

    repair = "--repair" in args
    event_ids = [UUID(a) for a in args if a != "--repair"]
    pool = await create_pool(settings.database_url, size=2)
    try:
        async with Redis.from_url(settings.redis_url, decode_responses=True) as redis:
            # The running service's relay publishes what a repair wrote.
            owner = CapacityOwner(units_of_work(pool, wake_relay=lambda: None), CapacityStore(redis, settings.redis_key_prefix))
            event_id = event_ids[0] if event_ids else None
            report = await (owner.settle(event_id) if repair else owner.audit(event_id))
    finally:
        await pool.close()
    print(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
    if not report.clean:
        raise SystemExit(1)
