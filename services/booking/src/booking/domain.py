"""Booking rules free of I/O."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID


@dataclass
class Booking:
    """A booking as the record holds it. Confirmed, it holds one unit of its professional's
    capacity in its slot; ``assignment`` says why that professional (the eligible ones with their
    bookings that day, and the random number)."""

    id: UUID
    event_id: UUID
    event_name: str
    slot_start: datetime
    slot_end: datetime
    status: str  # a BookingStatus value
    client_id: UUID
    client_name: str
    client_email: str | None
    client_timezone: str
    professional_id: UUID
    professional_name: str
    professional_email: str | None
    professional_timezone: str
    unit: int
    assignment: dict
    idempotency_key: str | None
    request_fingerprint: str
    sequence: int
    reminder_at: datetime | None  # when its reminder is due; None: none (``reminder_due``)


@dataclass(frozen=True)
class Appointment:
    """A confirmed booking as its client's or professional's calendar shows it."""

    booking_id: UUID
    event_name: str
    start: datetime
    end: datetime
    with_whom: str  # the professional, in a client's calendar; the client, in a professional's
    sequence: int
    changed_at: datetime


@dataclass
class WaitlistEntry:
    """A client's place in the queue for a full slot: waiting, offered a held unit (until
    ``offer_expires_at``), booked (the booking has the entry's id), expired or withdrawn."""

    id: UUID
    event_id: UUID
    event_name: str
    slot_start: datetime
    slot_end: datetime
    client_id: UUID
    client_name: str
    client_email: str | None
    client_timezone: str
    status: str  # a WaitlistStatus value
    offer_expires_at: datetime | None
    sequence: int


def reminder_due(start: datetime, reminder_hours: int, now: datetime) -> datetime | None:
    """When a booking starting at ``start``, made or moved at ``now``, is reminded of: its event's
    ``reminder_hours`` before the start; never when the event sends none (0), nor when that moment
    has passed already (a booking made closer to its start than the lead)."""
    if reminder_hours <= 0:
        return None
    due = start - timedelta(hours=reminder_hours)
    return due if due > now else None


@dataclass(frozen=True)
class Coverage:
    """One active shift: whose, where, and how many clients at once."""

    professional_id: UUID
    start: datetime
    end: datetime
    capacity: int


def capacity_of(professional_id: UUID, slot_start: datetime, slot_end: datetime, shifts: Sequence[Coverage]) -> int:
    return sum(s.capacity for s in shifts if s.professional_id == professional_id and s.start <= slot_start and slot_end <= s.end)


@dataclass(frozen=True)
class Beyond:
    """A confirmed booking the record no longer gives a unit for."""

    booking: Booking
    blocked: bool  # its slot is no longer bookable at all (hours changed, blacked out)
    capacity: int  # its professional's capacity in the slot now


def beyond_capacity(
    bookings: Sequence[Booking], shifts: Sequence[Coverage], bookable: Callable[[datetime, datetime], bool]
) -> list[Beyond]:
    """The confirmed bookings that hold a unit the record does not give: in a slot nobody may hold,
    or numbered above their professional's capacity there. Units are distinct per slot and
    professional (PostgreSQL's unique index), so with none beyond, no slot and no professional
    holds more bookings than its capacity: this is the record's audit, and the list of bookings a
    capacity change must move or flag."""
    found = []
    for b in bookings:
        capacity = capacity_of(b.professional_id, b.slot_start, b.slot_end, shifts)
        if not bookable(b.slot_start, b.slot_end):
            found.append(Beyond(b, True, capacity))
        elif b.unit > capacity:
            found.append(Beyond(b, False, capacity))
    return sorted(found, key=lambda f: (f.booking.slot_start, str(f.booking.professional_id), f.booking.unit))
