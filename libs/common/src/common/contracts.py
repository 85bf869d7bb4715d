"""Payloads of the integration events (SPEC section 5): the models producers build and consumers read.

Events carry the whole current state of their aggregate, so a consumer that keeps the state with
the highest ``sequence`` is right whatever order or how many times the messages arrive.
"""

import re
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

from common.schedule import DailyWindow, Schedule, Window, supported_day, supported_instant, zone_named

LOCAL_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
ZONE_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$"  # every IANA name; not every match is one


def _hours_and_minutes(value: object) -> object:
    """Only ``HH:MM`` (or a time without an offset, from our own code): pydantic would read a number
    as seconds and an offset into the time, and a time with an offset compares with none."""
    if isinstance(value, time) and value.tzinfo is None:
        return value
    if not isinstance(value, str) or not re.fullmatch(LOCAL_TIME_PATTERN, value):
        raise ValueError("a local time is written HH:MM (00:00 to 23:59), without an offset: the event's timezone gives it one")
    return value


LocalTime = Annotated[
    time,
    BeforeValidator(_hours_and_minutes),
    PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": LOCAL_TIME_PATTERN, "examples": ["09:00"]}),
]
"""A wall-clock time in an event's timezone, written ``HH:MM``."""

ZoneName = Annotated[
    str,
    AfterValidator(lambda name: zone_named(name).key),
    WithJsonSchema(
        {"type": "string", "pattern": ZONE_NAME_PATTERN, "maxLength": 64, "examples": ["Europe/Paris"],
         "description": "An IANA time zone name (not a folder of the database, such as 'America')"}
    ),
]  # fmt: skip
"""An IANA time zone's name, as a client gives one."""

DateTimeText = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
"""An instant an answer writes in its reader's zone, ISO 8601 with the offset (built as text on hot paths)."""


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


NoticeMinutes = Annotated[int, Field(ge=0, le=366 * 24 * 60)]
HorizonDays = Annotated[int, Field(ge=1, le=3660)]
DailyMaximum = Annotated[int, Field(ge=1, le=1000)]
OfferMinutes = Annotated[int, Field(ge=1, le=7 * 24 * 60)]
ReminderHours = Annotated[int, Field(ge=0, le=30 * 24)]


class RuleBreach(StrEnum):
    """Why a booking rule keeps a slot from being booked now (a 422's code, a day's ``reason``)."""

    TOO_SOON = "too_soon"
    TOO_FAR = "too_far"


class BookingRules(BaseModel):
    """An event's optional booking rules and the timings of its waitlist offers and reminders:
    declared once, for the event's input, its record and its events."""

    min_notice_minutes: NoticeMinutes | None = None  # no booking closer to the slot's start than this
    horizon_days: HorizonDays | None = None  # no booking of a slot that starts further ahead than this
    max_per_professional_per_day: DailyMaximum | None = None  # bookings one professional takes per event day
    waitlist_offer_minutes: OfferMinutes = 15  # how long a freed unit is held for the first waiter
    reminder_hours: ReminderHours = 24  # the reminder's lead on the start; 0: no reminders

    def breach(self, slot_start: datetime, now: datetime) -> RuleBreach | None:
        """What keeps a slot starting at ``slot_start`` from being booked at ``now`` (a slot that
        has begun is too soon whatever the notice)."""
        if slot_start < now + timedelta(minutes=self.min_notice_minutes or 0) or slot_start <= now:
            return RuleBreach.TOO_SOON
        if self.horizon_days is not None and slot_start > now + timedelta(days=self.horizon_days):
            return RuleBreach.TOO_FAR
        return None


class EventData(Contract, BookingRules):
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
    # When its reminder is due (its event's reminder_hours before the start); None: no reminder (the
    # event sends none, or the booking was made or moved closer to its start than that).
    reminder_at: datetime | None = None


class MovedBookingData(BookingData):
    """``booking.reassigned``: the booking as it is now, and the professional who had it."""

    previous_professional: Person


class RescheduledBookingData(MovedBookingData):
    """``booking.rescheduled``: the booking as it is now, and where and with whom it was before."""

    previous_start: datetime
    previous_end: datetime


class WaitlistStatus(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"
    BOOKED = "booked"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


class WaitlistEntryData(Contract):
    """``waitlist.offered`` / ``waitlist.expired``: a client's place in the queue for a full slot."""

    id: UUID
    event_id: UUID
    event_name: str
    start: datetime
    end: datetime
    client: Person
    status: WaitlistStatus
    offer_expires_at: datetime | None = None  # while offered: the unit is held for the client until then
