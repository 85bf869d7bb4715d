from aiohttp import web

from availability.service import Availability, Rebuilder

AVAILABILITY = web.AppKey("availability", Availability)
REBUILDER = web.AppKey("rebuilder", Rebuilder)
