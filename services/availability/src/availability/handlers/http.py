"""HTTP handlers: each endpoint declared once (route, roles, models, OpenAPI); validate, call the
service layer, answer."""

from aiohttp import web

from availability.api import AvailabilityOut, AvailabilityQuery
from availability.app_keys import AVAILABILITY
from common.endpoints import Call, Endpoints, Header
from common.web import conditional_json

api = Endpoints()


@api.get(
    "/availability",
    "A day's slots in a timezone (default: yours, else the event's)",
    query=AvailabilityQuery,
    responses={200: AvailabilityOut, 304: None},
    headers=(Header("If-None-Match", max_length=2000),),
)
async def availability(request: web.Request, call: Call[None, AvailabilityQuery]) -> web.Response:
    """Answered 304 to the ETag of an unchanged day: a page polling a day costs no parsing on
    either side and no bytes on the wire until a slot of it changes. At most ``ANSWER_MAX_AGE_SECONDS``
    behind the counters (the answers the service keeps)."""
    query = call.query
    zone_name = query.tz or (call.who.timezone if call.who else None)  # else the event's own
    answer = await request.app[AVAILABILITY].day(query.event_id, query.date, zone_name)
    return conditional_json(answer, call.headers["If-None-Match"])
