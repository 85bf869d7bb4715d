"""Payloads of the integration events (SPEC section 5): the models producers build and consumers read.

Events carry the whole current state of their aggregate, so a consumer that keeps the state with
the highest ``sequence`` is right whatever order or how many times the messages arrive.
"""

from datetime import date, datetime, time
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer

from common.schedule import DailyWindow, Schedule, Window, supported_day, supported_instant


def _without_offset(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("a local time is written HH:MM, without an offset: the event's timezone gives it one")
    return value


LocalTime = Annotated[
    time, AfterValidator(_without_offset), PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str, when_used="json")
]
"""A wall-clock time in an event's timezone, written ``HH:MM``."""


Day = Annotated[date, AfterValidator(supported_day)]
"""A calendar day a client may name: 1970-01-01 to 2999-12-31."""
Instant = Annotated[AwareDatetime, AfterValidator(supported_instant)]
"""An instant with its offset, on a day a client may name."""


class Contract(BaseModel):
    model_config = ConfigDict(frozen=True)


class DailyBlackoutData(Contract):
    id: UUID
    kind: Literal["daily"] = "daily"
    start_time: LocalTime
    end_time: LocalTime
    reason: str | None = None


class OneOffBlackoutData(Contract):
    id: UUID
    kind: Literal["one_off"] = "one_off"
    start: AwareDatetime
    end: AwareDatetime
    reason: str | None = None


BlackoutData = Annotated[DailyBlackoutData | OneOffBlackoutData, Field(discriminator="kind")]


class EventData(Contract):
    """``event.created``/``event.updated`` and, with ``blackout``, ``blackout.created``/``blackout.deleted``."""

    id: UUID
    name: str
    timezone: str
    start_date: date
    end_date: date
    opens_at: LocalTime
    closes_at: LocalTime
    slot_minutes: int
    blackouts: list[BlackoutData] = []

    def schedule(self) -> Schedule:
        return Schedule(
            zone=ZoneInfo(self.timezone),
            start_date=self.start_date,
            end_date=self.end_date,
            opens_at=self.opens_at,
            closes_at=self.closes_at,
            slot_minutes=self.slot_minutes,
            blackouts=tuple(
                DailyWindow(b.start_time, b.end_time) if isinstance(b, DailyBlackoutData) else Window(b.start, b.end)
                for b in self.blackouts
            ),
        )


class BlackoutChangeData(EventData):
    blackout: BlackoutData


class Person(Contract):
    id: UUID
    name: str
    email: str | None = None
    timezone: str = "UTC"


class ShiftStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"


class ShiftData(Contract):
    """``shift.created``/``shift.updated``/``shift.cancelled``."""

    id: UUID
    event_id: UUID
    professional_id: UUID
    professional: Person
    start: AwareDatetime
    end: AwareDatetime
    capacity: int
    status: ShiftStatus
    slot_minutes: int


class BookingStatus(StrEnum):
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    NEEDS_RESCHEDULE = "needs_reschedule"


class BookingData(Contract):
    """``booking.confirmed`` and the other booking events."""

    id: UUID
    event_id: UUID
    event_name: str
    start: datetime
    end: datetime
    status: BookingStatus
    client: Person
    professional: Person
    reason: str | None = None
