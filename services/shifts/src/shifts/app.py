from collections.abc import AsyncIterator

from aiohttp import web

from common import web as common_web
from common.envelope import SHIFTS_EXCHANGE
from common.outbox import Outbox, OutboxRelay
from shifts.adapters.db import OUTBOX
from shifts.app_keys import RELAY, SERVICE
from shifts.handlers.http import routes
from shifts.service import ShiftsService
from shifts.settings import Settings


def create_app(settings: Settings) -> web.Application:
    app = common_web.service_app(settings)

    async def wire(app: web.Application) -> AsyncIterator[None]:
        app[RELAY] = OutboxRelay(app[common_web.ENGINE], OUTBOX, app[common_web.BROKER], settings.outbox_poll_seconds)
        app[SERVICE] = ShiftsService(
            app[common_web.SESSIONS], Outbox(OUTBOX, SHIFTS_EXCHANGE, settings.service_name), app[RELAY].wake
        )
        yield

    app.cleanup_ctx.extend(
        [
            common_web.database(settings.database_url),
            common_web.broker(settings.rabbitmq_url, settings.service_name),
            wire,
            common_web.background("outbox-relay", lambda app: app[RELAY].run()),
        ]
    )
    app.add_routes(routes)
    return app
