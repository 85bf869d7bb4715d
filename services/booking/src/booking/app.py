from collections.abc import AsyncIterator

from aiohttp import web

from booking.adapters.db import OUTBOX
from booking.app_keys import RELAY, SERVICE
from booking.handlers.http import routes
from booking.service import BookingService
from booking.settings import Settings
from common import web as common_web
from common.capacity import CapacityStore
from common.envelope import BOOKINGS_EXCHANGE
from common.outbox import Outbox, OutboxRelay


def create_app(settings: Settings) -> web.Application:
    app = common_web.service_app(settings)

    async def wire(app: web.Application) -> AsyncIterator[None]:
        app[RELAY] = OutboxRelay(app[common_web.ENGINE], OUTBOX, app[common_web.BROKER], settings.outbox_poll_seconds)
        app[SERVICE] = BookingService(
            app[common_web.SESSIONS],
            CapacityStore(app[common_web.REDIS], settings.redis_key_prefix),
            Outbox(OUTBOX, BOOKINGS_EXCHANGE, settings.service_name),
            app[RELAY].wake,
        )
        yield

    app.cleanup_ctx.extend(
        [
            common_web.database(settings.database_url),
            common_web.redis_client(settings.redis_url),
            common_web.broker(settings.rabbitmq_url, settings.service_name),
            wire,
            common_web.background("outbox-relay", lambda app: app[RELAY].run()),
        ]
    )
    app.add_routes(routes)
    return app
