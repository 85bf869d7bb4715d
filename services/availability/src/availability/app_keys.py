from aiohttp import web

from availability.service import Availability, StreamSettings

AVAILABILITY = web.AppKey("availability", Availability)
STREAM_SETTINGS = web.AppKey("stream_settings", StreamSettings)
