from collections.abc import AsyncIterator

from aiohttp import web

from common import web as common_web
from common.envelope import SHIFTS_EXCHANGE
from shifts.adapters.db import OUTBOX
from shifts.app_keys import SERVICE
from shifts.handlers.http import OPERATIONS, routes
from shifts.service import ShiftsService
from shifts.settings import Settings


def create_app(settings: Settings) -> web.Application:
    app = common_web.service_app(settings)

    async def wire(app: web.Application) -> AsyncIterator[None]:
        app[SERVICE] = ShiftsService(app[common_web.SESSIONS], app[common_web.OUTBOX], app[common_web.RELAY].wake)
        yield

    app.cleanup_ctx.extend(
        [
            common_web.database(settings.database_url),
            common_web.broker(settings.rabbitmq_url, settings.service_name),
            common_web.outbox(OUTBOX, SHIFTS_EXCHANGE, settings.service_name, settings.outbox_poll_seconds),
            wire,
        ]
    )
    app.add_routes(routes)
    common_web.openapi(app, "shifts", OPERATIONS)
    return app
