from collections.abc import AsyncIterator

from aiohttp import web

from common import web as common_web
from shifts.adapters.db import OUTBOX
from shifts.app_keys import SERVICE
from shifts.handlers.http import api
from shifts.handlers.messages import subscriptions
from shifts.service import ShiftsService
from shifts.settings import Settings


def create_app(settings: Settings) -> web.Application:
    app = common_web.service_app(settings)

    async def wire(app: web.Application) -> AsyncIterator[None]:
        app[SERVICE] = ShiftsService(app[common_web.UNITS_OF_WORK], settings.professional_wait_seconds)
        yield

    app.cleanup_ctx.extend(
        [
            common_web.database(settings.database_url),
            common_web.broker(settings.rabbitmq_url, settings.service_name),
            common_web.outbox(settings, OUTBOX),
            wire,
            common_web.consumer(settings, lambda app: subscriptions(app[SERVICE])),
        ]
    )
    common_web.add_endpoints(app, "shifts", api)
    return app
