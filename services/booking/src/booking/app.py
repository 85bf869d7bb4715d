from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web

from booking.adapters.db import OUTBOX
from booking.app_keys import SERVICE
from booking.handlers.http import OPERATIONS, routes
from booking.handlers.messages import on_shift_change
from booking.service import BookingService
from booking.settings import Settings
from common import web as common_web
from common.capacity import CapacityStore
from common.envelope import BOOKINGS_EXCHANGE, SHIFTS_EXCHANGE


def create_app(settings: Settings) -> web.Application:
    app = common_web.service_app(settings)

    async def wire(app: web.Application) -> AsyncIterator[None]:
        app[SERVICE] = BookingService(
            app[common_web.SESSIONS],
            app[common_web.PG_POOL],
            CapacityStore(app[common_web.REDIS], settings.redis_key_prefix),
            app[common_web.OUTBOX],
            app[common_web.RELAY].wake,
            settings.hold_seconds,
        )
        yield

    async def consume_shift_changes(app: web.Application) -> AsyncIterator[None]:
        await app[common_web.BROKER].subscribe(
            settings.queue_name, SHIFTS_EXCHANGE, ["shift.*"], partial(on_shift_change, app[SERVICE]), settings.consumer_prefetch
        )
        yield

    app.cleanup_ctx.extend(
        [
            common_web.database(settings.database_url),
            common_web.pg_pool(settings.database_url),
            common_web.redis_client(settings.redis_url),
            common_web.broker(settings.rabbitmq_url, settings.service_name),
            common_web.outbox(OUTBOX, BOOKINGS_EXCHANGE, settings.service_name, settings.outbox_poll_seconds),
            wire,
            consume_shift_changes,
        ]
    )
    app.add_routes(routes)
    common_web.openapi(app, "booking", OPERATIONS)
    return app
