from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web

from availability.app_keys import STORE
from availability.handlers.http import routes
from availability.handlers.messages import apply_shift_change
from availability.settings import Settings
from common import web as common_web
from common.capacity import CapacityStore
from common.envelope import SHIFTS_EXCHANGE


def create_app(settings: Settings) -> web.Application:
    app = common_web.service_app(settings)

    async def capacity(app: web.Application) -> AsyncIterator[None]:
        app[STORE] = CapacityStore(app[common_web.REDIS], settings.redis_key_prefix)
        yield

    async def consume_shift_changes(app: web.Application) -> AsyncIterator[None]:
        await app[common_web.BROKER].subscribe(
            settings.queue_name,
            SHIFTS_EXCHANGE,
            ["event.*", "blackout.*", "shift.*"],
            partial(apply_shift_change, app[STORE]),
            settings.consumer_prefetch,
        )
        yield

    app.cleanup_ctx.extend(
        [
            common_web.redis_client(settings.redis_url),
            capacity,
            common_web.broker(settings.rabbitmq_url, settings.service_name),
            consume_shift_changes,
        ]
    )
    app.add_routes(routes)
    return app
