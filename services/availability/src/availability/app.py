from collections.abc import AsyncIterator

from aiohttp import web

from availability.adapters.counters import Counters
from availability.app_keys import AVAILABILITY
from availability.handlers.http import api
from availability.metrics import STREAMS_OPEN
from availability.service import Availability
from availability.settings import Settings
from availability.streams import StreamSettings
from common import web as common_web


def create_app(settings: Settings) -> web.Application:
    app = common_web.service_app(settings)

    async def counters(app: web.Application) -> AsyncIterator[None]:
        streams = StreamSettings(
            settings.stream_min_interval_seconds, settings.stream_recheck_seconds, settings.stream_heartbeat_seconds
        )
        app[AVAILABILITY] = availability = Availability(
            Counters(app[common_web.REDIS], settings.redis_key_prefix),
            settings.answer_max_age_seconds,
            settings.edge_keep_seconds,
            streams,
        )
        STREAMS_OPEN.set_function(lambda: len(availability.feeds))
        yield

    async def end_streams(app: web.Application) -> None:
        await app[AVAILABILITY].feeds.close()  # before the open requests are waited for

    app.on_shutdown.append(end_streams)

    app.cleanup_ctx.extend(
        [
            common_web.redis_client(settings, retry_lost_connections=True),  # reads only
            common_web.profiles(settings),  # a signed-in reader's own timezone, as it is now
            counters,
            common_web.background("follow-changes", lambda app: app[AVAILABILITY].follow_changes()),
        ]
    )
    common_web.add_endpoints(app, "availability", api)
    return app
