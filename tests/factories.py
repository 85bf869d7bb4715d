"""Builders of contract objects for tests."""

import uuid
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from common.contracts import EventData, Person, ShiftData, ShiftStatus
from common.events import EVENT_TYPES, Event


def event_data(
    zone: str = "UTC",
    start: date | None = None,
    days: int = 3,
    opens: time = time(9),
    closes: time = time(17),
    slot_minutes: int = 30,
    blackouts: list | None = None,
) -> EventData:
    start = start or (datetime.now(ZoneInfo(zone)).date() + timedelta(days=1))
    return EventData(
        id=uuid.uuid4(),
        name="Test event",
        timezone=zone,
        start_date=start,
        end_date=start + timedelta(days=days - 1),
        opens_at=opens,
        closes_at=closes,
        slot_minutes=slot_minutes,
        blackouts=blackouts or [],
    )


def professional(name: str = "Pro") -> Person:
    return Person(id=uuid.uuid4(), name=name, email=f"{name.lower().replace(' ', '.')}@test.example", timezone="UTC")


def shift_data(
    event: EventData,
    pro: Person,
    start: datetime,
    end: datetime,
    capacity: int = 1,
    status: ShiftStatus = ShiftStatus.ACTIVE,
    shift_id: uuid.UUID | None = None,
) -> ShiftData:
    return ShiftData(
        id=shift_id or uuid.uuid4(),
        event_id=event.id,
        professional_id=pro.id,
        professional=pro,
        start=start,
        end=end,
        capacity=capacity,
        status=status,
        slot_minutes=event.slot_minutes,
    )


def message(routing_key: str, aggregate, sequence: int, data) -> Event:
    """An event as its producer would publish it (``.envelope()``: as it travels)."""
    return EVENT_TYPES[routing_key].of(aggregate, sequence, data)
