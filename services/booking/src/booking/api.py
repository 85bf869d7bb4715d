"""The booking service's public contract: the request and answer models its endpoints declare,
and the answers built from them (the benchmark baseline answers with the same)."""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import AnyUrl, BaseModel, ConfigDict, EmailStr, Field

from common.auth import Identity
from common.contracts import (
    BookingData,
    BookingRules,
    BookingStatus,
    DateTimeText,
    Instant,
    RuleBreach,
    WaitlistEntryData,
    WaitlistStatus,
)
from common.errors import Problem
from common.roles import Role
from common.schedule import Slot, zone_named


class SlotRequest(BaseModel):
    """A slot of an event asked for: by a booking, a reschedule of one, or a place on its waitlist."""

    model_config = ConfigDict(extra="forbid")

    event_id: UUID
    start: Instant


class BookingIn(SlotRequest):
    email: EmailStr | None = None


class RescheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: Instant  # the start of the slot to move to, in the booking's event


class WaitlistIn(SlotRequest):
    email: EmailStr | None = None  # where the offer goes (no address: the client sees it in My Appointments)


class ClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str | None = Field(None, max_length=200)  # the offer mail's link, for a claim without signing in


class WaitlistOut(BaseModel):
    """A client's place in the queue for a full slot."""

    id: UUID
    event_id: UUID
    event_name: str
    start: DateTimeText
    end: DateTimeText
    status: WaitlistStatus
    position: int | None  # 1: next to be offered a freed unit (while waiting)
    offer_expires_at: DateTimeText | None  # while offered: claim before this


class WaitlistPage(BaseModel):
    items: list[WaitlistOut]
    next_cursor: UUID | None


class BookingQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cursor: UUID | None = None
    limit: int = Field(50, ge=1, le=200)


class UsageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: UUID | None = None


class PersonRef(BaseModel):
    id: UUID
    name: str


class BookingOut(BaseModel):
    """A booking as its viewer sees it: times in the viewer's timezone, with the offset."""

    id: UUID
    event_id: UUID
    event_name: str
    start: DateTimeText
    end: DateTimeText
    status: BookingStatus
    professional: PersonRef
    client: PersonRef | None = None  # shown to professionals and admins (null for clients)
    assignment: dict[str, Any] | None = None  # admins, one booking: why this professional (else null)


class BookingPage(BaseModel):
    items: list[BookingOut]
    next_cursor: UUID | None


class ProfessionalShare(BaseModel):
    id: UUID
    name: str
    bookings: int
    by_day: dict[str, int]  # the event's days (YYYY-MM-DD, in its own zone) with the bookings of each


class Distribution(BaseModel):
    event_id: UUID
    professionals: list[ProfessionalShare]
    mean: float
    largest_deviation_from_mean: float


def booking_out(booking: BookingData, viewer: Identity, assignment: dict | None = None) -> dict:
    """A booking as its viewer sees it: times in the viewer's timezone, with the offset; the client
    for professionals and admins; why this professional, when given (admins)."""
    zone = zone_named(viewer.timezone)
    out = BookingOut(
        id=booking.id,
        event_id=booking.event_id,
        event_name=booking.event_name,
        start=booking.start.astimezone(zone).isoformat(),
        end=booking.end.astimezone(zone).isoformat(),
        status=booking.status.value,
        professional=PersonRef(id=booking.professional.id, name=booking.professional.name),
        client=None if viewer.role is Role.CLIENT else PersonRef(id=booking.client.id, name=booking.client.name),
        assignment=assignment,
    )
    return out.model_dump(mode="json")


def entry_out(entry: WaitlistEntryData, position: int | None) -> dict:
    """A waitlist entry as its client sees it: times in their timezone, with the offset."""
    zone = zone_named(entry.client.timezone)
    out = WaitlistOut(
        id=entry.id,
        event_id=entry.event_id,
        event_name=entry.event_name,
        start=entry.start.astimezone(zone).isoformat(),
        end=entry.end.astimezone(zone).isoformat(),
        status=entry.status,
        position=position,
        offer_expires_at=entry.offer_expires_at.astimezone(zone).isoformat() if entry.offer_expires_at else None,
    )
    return out.model_dump(mode="json")


def key_reused() -> Problem:
    return Problem(422, "idempotency_key_reused", "Idempotency-Key reused", "This key was used for a different request.")


def rule_breached(rules: BookingRules, breach: RuleBreach) -> Problem:
    """422 ``too_soon`` or ``too_far``: the event's rules keep the slot from being booked now."""
    if breach is RuleBreach.TOO_SOON:
        notice = rules.min_notice_minutes
        detail = f"This event takes bookings at least {notice} minutes before the start."
        return Problem(422, breach.value, "Too soon", detail, min_notice_minutes=notice)
    return Problem(
        422,
        breach.value,
        "Too far ahead",
        f"This event takes bookings up to {rules.horizon_days} days ahead.",
        horizon_days=rules.horizon_days,
    )


def slot_unavailable(slot: Slot, open_slots: list[Slot]) -> Problem:
    """409 ``slot_unavailable``, offering the three open slots nearest to the one asked for."""
    later = [s for s in open_slots if s.start > datetime.now(UTC)]
    nearest = sorted(later, key=lambda s: abs((s.start - slot.start).total_seconds()))[:3]
    return Problem(
        409,
        "slot_unavailable",
        "Slot unavailable",
        "That slot is fully booked; pick another.",
        nearest_available=[{"start": s.start.isoformat(), "end": s.end.isoformat()} for s in sorted(nearest)],
    )


class CalendarFeedOut(BaseModel):
    url: AnyUrl  # private: whoever has it reads the calendar (no sign-in), until a new one is made or it is revoked
