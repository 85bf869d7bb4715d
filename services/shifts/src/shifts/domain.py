"""Rules for events, blackouts and shifts. Pure: no I/O, no framework."""

from datetime import UTC, date, datetime, time

from common.errors import Problem
from common.schedule import Schedule

MAX_SHIFT_CAPACITY = 100
MAX_SLOT_MINUTES = 24 * 60


def check_event(start_date: date, end_date: date, opens_at: time, closes_at: time, slot_minutes: int) -> None:
    if end_date < start_date:
        raise Problem(422, "invalid_event", "Invalid event", "end_date is before start_date.")
    if closes_at <= opens_at:
        raise Problem(422, "invalid_event", "Invalid event", "closes_at must be after opens_at.")
    open_minutes = (closes_at.hour * 60 + closes_at.minute) - (opens_at.hour * 60 + opens_at.minute)
    if slot_minutes > open_minutes:
        raise Problem(422, "invalid_event", "Invalid event", "The slot is longer than the daily opening hours.")


def check_window(start, end) -> None:
    if end <= start:
        raise Problem(422, "invalid_blackout", "Invalid blackout", "A blackout must end after it starts.")


def shift_fits(schedule: Schedule, start: datetime, end: datetime) -> bool:
    """Whether [start, end) covers whole slots of one event day, within the event's dates and hours."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)  # compared by ==, which zones can defeat (PEP 495)
    day = schedule.event_day_of(start)
    slots = schedule.slots_on_event_day(day)
    return start < end and start in {s.start for s in slots} and end in {s.end for s in slots}


def check_shift(schedule: Schedule, start: datetime, end: datetime, capacity: int) -> None:
    """A shift covers whole slots of one event day, within the event's dates and hours."""
    if end <= start:
        raise Problem(422, "invalid_shift", "Invalid shift", "A shift must end after it starts.")
    if not 1 <= capacity <= MAX_SHIFT_CAPACITY:
        raise Problem(422, "invalid_shift", "Invalid shift", f"capacity must be between 1 and {MAX_SHIFT_CAPACITY}.")
    day = schedule.event_day_of(start)
    if not schedule.start_date <= day <= schedule.end_date:
        raise Problem(422, "outside_event", "Outside the event", "The shift is not within the event's dates.")
    if not shift_fits(schedule, start, end):
        raise Problem(
            422,
            "not_on_slot_boundaries",
            "Not on slot boundaries",
            f"A shift starts and ends on {schedule.slot_minutes}-minute slot boundaries within the event's daily hours.",
        )
