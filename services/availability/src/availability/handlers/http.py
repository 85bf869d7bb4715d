from datetime import date
from functools import lru_cache
from uuid import UUID
from zoneinfo import ZoneInfo

from aiohttp import web

from availability.api import AvailabilityOut, AvailabilityQuery
from availability.app_keys import STORE
from availability.domain import day_frame, day_view
from common.endpoints import Call, Endpoints
from common.errors import not_found, try_again
from common.schedule import Schedule, zone_named
from common.web import json_response

api = Endpoints()


@lru_cache(maxsize=4096)
def _local_times(schedule: Schedule, day: date, zone: ZoneInfo) -> tuple[tuple[str, str], ...]:
    """Each slot's start and end as the client reads them; like the frame, worked out once."""
    return tuple(
        (slot.start.astimezone(zone).isoformat(), slot.end.astimezone(zone).isoformat())
        for slot in day_frame(schedule, day, zone).slots
    )


@api.get(
    "/availability",
    "A day's slots in a timezone (default: yours, else the event's)",
    query=AvailabilityQuery,
    responses={200: AvailabilityOut},
)
async def availability(request: web.Request, call: Call[None, AvailabilityQuery]) -> web.Response:
    query = call.query
    zone_name = query.tz or (call.who.timezone if call.who else None)  # else the event's own
    store = request.app[STORE]
    counts = await store.day_counts(query.event_id, query.date, zone_named(zone_name) if zone_name else None)
    if counts is None:
        if not await store.is_built():
            raise try_again("Availability is being rebuilt; try again in a moment.")
        raise not_found("event")
    zone = zone_named(zone_name) if zone_name else counts.event.schedule.zone
    return json_response(day_answer(query.event_id, counts.event.schedule, query.date, zone, counts.capacity, counts.remaining))


def day_answer(event_id: UUID, schedule: Schedule, day: date, zone: ZoneInfo, capacity: list[int], remaining: list[int]) -> dict:
    """The answer for a day, from the counters of its slots (in the order of ``slots_on_local_day``)."""
    view = day_view(day_frame(schedule, day, zone), capacity, remaining)
    times = _local_times(schedule, day, zone)
    return {
        "event_id": str(event_id),
        "date": day.isoformat(),
        "timezone": zone.key,
        "slots": [
            {"start": start, "end": end, "status": v.status.value, "remaining": v.remaining}
            for (start, end), v in zip(times, view.slots, strict=True)
        ],
        "reason": view.reason.value if view.reason else None,
    }
