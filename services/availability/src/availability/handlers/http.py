"""HTTP handlers: each endpoint declared once (route, roles, models, OpenAPI); validate, call the
service layer, answer."""

from aiohttp import web

from availability.api import AvailabilityOut, AvailabilityQuery, MonthOut, MonthQuery, first_of_month
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


@api.get(
    "/availability/month",
    "A month at a glance: which days have a free slot, and how many units (one request fills a month view)",
    query=MonthQuery,
    responses={200: MonthOut, 304: None},
    headers=(Header("If-None-Match", max_length=2000),),
)
async def availability_month(request: web.Request, call: Call[None, MonthQuery]) -> web.Response:
    """Kept, revalidated and bounded like a day's answer."""
    query = call.query
    zone_name = query.tz or (call.who.timezone if call.who else None)
    answer = await request.app[AVAILABILITY].month(query.event_id, first_of_month(query.month), zone_name)
    return conditional_json(answer, call.headers["If-None-Match"])
