from collections.abc import AsyncIterator
from uuid import UUID

from aiohttp import web

from booking.adapters.db import OUTBOX
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
        app[SERVICE] = BookingService(
            app[common_web.UNITS_OF_WORK],
            app[common_web.PG_POOL],
            store,
            app[common_web.RELAY].wake,
            settings.hold_seconds,
            settings.deadline_seconds,
            settings.bookings_per_minute,
        )
        app[OWNER] = CapacityOwner(app[common_web.UNITS_OF_WORK], store)
        yield

    async def consume_shift_changes(app: web.Application) -> AsyncIterator[None]:
        await app[common_web.BROKER].subscribe(settings.queue_name, subscriptions(app[OWNER]), settings.consumer_prefetch)
        yield

    app.cleanup_ctx.extend(
        [
            common_web.database(settings.database_url),
            common_web.pg_pool(settings.database_url),
            common_web.redis_client(settings.redis_url),
            common_web.broker(settings.rabbitmq_url, settings.service_name),
            common_web.outbox(OUTBOX, settings.outbox_poll_seconds),
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

    from common.db import create_engine, session_factory
    from common.outbox import Outbox
    from common.unit_of_work import unit_of_work

    repair = "--repair" in args
    event_ids = [UUID(a) for a in args if a != "--repair"]
    engine = create_engine(settings.database_url, pool_size=2)
    try:
        async with Redis.from_url(settings.redis_url, decode_responses=True) as redis:
            # The running service's relay publishes what a repair wrote.
            units_of_work = unit_of_work(session_factory(engine), Outbox(OUTBOX), wake_relay=lambda: None)
            owner = CapacityOwner(units_of_work, CapacityStore(redis, settings.redis_key_prefix))
            event_id = event_ids[0] if event_ids else None
            report = await (owner.settle(event_id) if repair else owner.audit(event_id))
    finally:
        await engine.dispose()
    print(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
    if not report.clean:
        raise SystemExit(1)
