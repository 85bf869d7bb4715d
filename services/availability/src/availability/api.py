"""The availability service's public contract: the query and answer models its endpoint declares,
and the answer built from a day's counters (the benchmark baseline answers with the same)."""

from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Annotated
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, StringConstraints

from availability.adapters.counters import DayCounts
from availability.domain import Reason, SlotStatus, day_frame, day_view, days_of_month, summary
from common.contracts import DateTimeText, Day, EventData, ZoneName
from common.schedule import Schedule


class AvailabilityQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: UUID
    date: Day
    tz: ZoneName | None = None  # default: the signed-in reader's zone, else the event's


def first_of_month(month: str) -> date:
    """The first day of a ``YYYY-MM`` month."""
    year, _, number = month.partition("-")
    return date(int(year), int(number), 1)


Month = Annotated[str, StringConstraints(pattern=r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$")]
"""A calendar month, written ``YYYY-MM``: 01 to 12, of the years whose days a client may name
(1970 to 2999, ``common.schedule.supported_day``)."""


class MonthQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: UUID
    month: Month
    tz: ZoneName | None = None  # default: the signed-in reader's zone, else the event's


class SlotOut(BaseModel):
    start: DateTimeText  # in the answer's timezone, with its offset
    end: DateTimeText
    status: SlotStatus  # blocked: blacked out, or ruled out now by the event's booking rules
    remaining: int


class AvailabilityOut(BaseModel):
    event_id: UUID
    date: date
    timezone: str
    slots: list[SlotOut]
    reason: Reason | None  # when nothing is available


class DaySummaryOut(BaseModel):
    date: date
    available: bool  # a slot of the day can be booked now
    remaining: int  # units of those slots
    reason: Reason | None  # as the day's answer gives it, when nothing is available


class MonthOut(BaseModel):
    event_id: UUID
    month: Month
    timezone: str
    days: list[DaySummaryOut]


@lru_cache(maxsize=4096)
def _local_times(schedule: Schedule, day: date, zone: ZoneInfo) -> tuple[tuple[str, str], ...]:
    """Each slot's start and end as the client reads them; like the frame, worked out once."""
    return tuple(
        (slot.start.astimezone(zone).isoformat(), slot.end.astimezone(zone).isoformat())
        for slot in day_frame(schedule, day, zone).slots
    )


def day_answer(
    event: EventData, schedule: Schedule, day: date, zone: ZoneInfo, capacity: list[int], remaining: list[int]
) -> dict:
    """The answer for a day as of now, from the counters of its slots (in the order of
    ``slots_on_local_day``) and the event's booking rules. A plain dict, not a model per slot: it
    is the measured hot path (``AvailabilityOut`` documents it, and a test checks real answers
    against the document)."""
    event_id = event.id
    view = day_view(day_frame(schedule, day, zone), capacity, remaining, event, datetime.now(UTC))
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


def month_answer(event: EventData, first: date, zone: ZoneInfo, days: list[DayCounts]) -> dict:
    """The month as a month view shows it: each day summed up from its counters as its own answer
    would show it now."""
    now = datetime.now(UTC)
    out = []
    for day, counts in zip(days_of_month(first), days, strict=True):
        frame = day_frame(counts.event.schedule, day, zone)
        seen = summary(day_view(frame, counts.capacity, counts.remaining, event, now))
        out.append(
            {
                "date": day.isoformat(),
                "available": seen.available,
                "remaining": seen.remaining,
                "reason": seen.reason.value if seen.reason else None,
            }
        )
    return {"event_id": str(event.id), "month": first.strftime("%Y-%m"), "timezone": zone.key, "days": out}
