from aiohttp import web

from availability.service import Availability

AVAILABILITY = web.AppKey("availability", Availability)
