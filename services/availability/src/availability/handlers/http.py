from aiohttp import web

from availability.api import AvailabilityQuery
from availability.app_keys import STORE
from availability.domain import day_view
from common.auth import current_identity
from common.errors import not_found, try_again
from common.problems import parse_query
from common.schedule import zone_named

routes = web.RouteTableDef()


@routes.get("/availability")
async def availability(request: web.Request) -> web.Response:
    query = parse_query(request, AvailabilityQuery)
    identity = current_identity(request)
    zone_name = query.tz or (identity.timezone if identity else None)  # else the event's own
    counts = await request.app[STORE].day_counts(query.event_id, query.date, zone_named(zone_name) if zone_name else None)
    if counts is None:
        if not await request.app[STORE].is_built():
            raise try_again("Availability is being rebuilt; try again in a moment.")
        raise not_found("event")
    zone = zone_named(zone_name) if zone_name else counts.event.schedule.zone
    view = day_view(counts.event.schedule, counts.slots, counts.capacity, counts.remaining)
    return web.json_response(
        {
            "event_id": str(query.event_id),
            "date": query.date.isoformat(),
            "timezone": zone.key,
            "slots": [
                {
                    "start": v.slot.start.astimezone(zone).isoformat(),
                    "end": v.slot.end.astimezone(zone).isoformat(),
                    "status": v.status.value,
                    "remaining": v.remaining,
                }
                for v in view.slots
            ],
            "reason": view.reason.value if view.reason else None,
        }
    )
