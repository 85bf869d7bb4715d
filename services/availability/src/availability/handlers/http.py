"""HTTP handlers: each endpoint declared once (route, roles, models, OpenAPI); validate, call the
service layer, answer."""

from aiohttp import web

from availability.api import AvailabilityOut, AvailabilityQuery
from availability.app_keys import AVAILABILITY
from common.endpoints import Call, Endpoints
from common.web import json_response

api = Endpoints()


@api.get(
    "/availability",
    "A day's slots in a timezone (default: yours, else the event's)",
    query=AvailabilityQuery,
    responses={200: AvailabilityOut},
)
async def availability(request: web.Request, call: Call[None, AvailabilityQuery]) -> web.Response:
    query = call.query
    zone_name = query.tz or (call.who.timezone if call.who else None)  # else the event's own
    return json_response(await request.app[AVAILABILITY].day(query.event_id, query.date, zone_name))
