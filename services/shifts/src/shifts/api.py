"""The shapes of the shifts service's HTTP requests and responses (validated at the edge)."""

from typing import Self
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from common.contracts import (
    BookingRules,
    DailyBlackoutData,
    DailyMaximum,
    Day,
    EventData,
    HorizonDays,
    Instant,
    LocalTime,
    NoticeMinutes,
    OfferMinutes,
    OneOffBlackoutData,
    ReminderHours,
    ShiftStatus,
    ZoneName,
)
from shifts.domain import MAX_SHIFT_CAPACITY, MAX_SLOT_MINUTES


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventIn(Input, BookingRules):
    name: str = Field(min_length=1, max_length=200)
    timezone: ZoneName
    start_date: Day
    end_date: Day
    opens_at: LocalTime
    closes_at: LocalTime
    slot_minutes: int = Field(ge=5, le=MAX_SLOT_MINUTES)


class EventPatch(Input):
    name: str | None = Field(None, min_length=1, max_length=200)
    timezone: ZoneName | None = None
    start_date: Day | None = None
    end_date: Day | None = None
    opens_at: LocalTime | None = None
    closes_at: LocalTime | None = None
    slot_minutes: int | None = Field(None, ge=5, le=MAX_SLOT_MINUTES)
    # Left out (or null), unchanged; a rule set to null is no rule any more.
    min_notice_minutes: NoticeMinutes | None = None
    horizon_days: HorizonDays | None = None
    max_per_professional_per_day: DailyMaximum | None = None
    waitlist_offer_minutes: OfferMinutes | None = None
    reminder_hours: ReminderHours | None = None

    def changes(self) -> dict:
        """The fields to change: those given, but a null that is not a rule's (left as it was)."""
        rules = {"min_notice_minutes", "horizon_days", "max_per_professional_per_day"}
        return {f: v for f, v in self.model_dump(exclude_unset=True).items() if v is not None or f in rules}


class BlackoutIn(Input):
    """Daily ``{start_time, end_time}`` or one-off ``{start, end}``."""

    start_time: LocalTime | None = None
    end_time: LocalTime | None = None
    start: Instant | None = None
    end: Instant | None = None
    reason: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def one_form(self) -> Self:
        daily = self.start_time is not None and self.end_time is not None
        one_off = self.start is not None and self.end is not None
        if daily == one_off or (daily and (self.start or self.end)) or (one_off and (self.start_time or self.end_time)):
            raise ValueError("give either start_time and end_time (daily) or start and end (one-off)")
        return self


class ShiftIn(Input):
    event_id: UUID
    start: Instant
    end: Instant
    capacity: int = Field(1, ge=1, le=MAX_SHIFT_CAPACITY)
    professional_id: UUID | None = None


class ShiftPatch(Input):
    start: Instant | None = None
    end: Instant | None = None
    capacity: int | None = Field(None, ge=1, le=MAX_SHIFT_CAPACITY)


class ShiftQuery(Input):
    event_id: UUID | None = None
    cursor: UUID | None = None
    limit: int = Field(50, ge=1, le=200)


class PageQuery(Input):
    cursor: UUID | None = None
    limit: int = Field(50, ge=1, le=200)


class ProfessionalRef(BaseModel):
    id: UUID
    name: str


class ShiftOut(BaseModel):
    id: UUID
    event_id: UUID
    professional_id: UUID
    professional: ProfessionalRef
    start: AwareDatetime
    end: AwareDatetime
    capacity: int
    status: ShiftStatus


class EventPage(BaseModel):
    items: list[EventData]
    next_cursor: UUID | None


class ShiftPage(BaseModel):
    items: list[ShiftOut]
    next_cursor: UUID | None


Blackout = DailyBlackoutData | OneOffBlackoutData
