"""Slot arithmetic: pure, no I/O. An event's slots tile its daily open hours in absolute time.

Open and close hours are local to the event's timezone, so on a DST change a day's opening
is one hour longer or shorter and the tiling follows. A client's date is a local calendar day in
the client's own timezone (23, 24 or 25 hours), which may cover two of the event's days.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones


@dataclass(frozen=True, order=True)
class Slot:
    start: datetime  # aware, UTC
    end: datetime

    @property
    def key(self) -> str:
        """The slot's identity everywhere (Redis fields, database rows): its start as a Unix time."""
        return str(int(self.start.timestamp()))

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end


@dataclass(frozen=True)
class DailyWindow:
    """A window repeating every day of the event in the event's local time, e.g. lunch 12:00-13:00."""

    start_time: time
    end_time: time


@dataclass(frozen=True)
class Window:
    """A one-off window between two instants."""

    start: datetime
    end: datetime


Blackout = DailyWindow | Window


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def zone_named(name: str) -> ZoneInfo:
    """The IANA zone called ``name``; a ValueError (a 422 at the edge) for anything else: only the
    database's zone names are looked up, never a folder of it ("America") or one of its data files."""
    if name not in _zone_names():
        raise ValueError(f"unknown timezone {name!r}; use an IANA name such as 'Europe/Paris'")
    return ZoneInfo(name)


EARLIEST_DAY, LATEST_DAY = date(1970, 1, 1), date(2999, 12, 31)


def supported_day(value: date) -> date:
    """A calendar day the product works with: 1970-01-01 to 2999-12-31. Beyond, a day seen from
    another zone would fall off Python's calendar (a 500 before; a 422 at the edge now)."""
    if not EARLIEST_DAY <= value <= LATEST_DAY:
        raise ValueError(f"dates run from {EARLIEST_DAY} to {LATEST_DAY}")
    return value


def supported_instant(value: datetime) -> datetime:
    """An instant on a supported day, in whatever offset it was written."""
    if value.tzinfo is not None and not EARLIEST_DAY <= value.replace(tzinfo=None).date() <= LATEST_DAY:
        raise ValueError(f"dates run from {EARLIEST_DAY} to {LATEST_DAY}")
    return value


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Schedule:
    zone: ZoneInfo
    start_date: date
    end_date: date
    opens_at: time
    closes_at: time
    slot_minutes: int
    blackouts: tuple[Blackout, ...] = ()

    @property
    def slot_length(self) -> timedelta:
        return timedelta(minutes=self.slot_minutes)

    def event_days(self) -> Iterable[date]:
        day = self.start_date
        while day <= self.end_date:
            yield day
            day += timedelta(days=1)

    def slots_on_event_day(self, day: date) -> list[Slot]:
        if not self.start_date <= day <= self.end_date:
            return []
        start = local_instant(day, self.opens_at, self.zone)
        close = local_instant(day, self.closes_at, self.zone)
        length = self.slot_length
        slots = []
        while start + length <= close:
            slots.append(Slot(start, start + length))
            start += length
        return slots

    def slots_on_local_day(self, day: date, zone: ZoneInfo) -> tuple[Slot, ...]:
        """The event's slots starting within the calendar day ``day`` of ``zone`` (remembered: the
        answer depends only on the schedule, the day and the zone)."""
        return _slots_on_local_day(self, day, zone)

    def _compute_slots_on_local_day(self, day: date, zone: ZoneInfo) -> tuple[Slot, ...]:
        window_start = local_instant(day, time(0), zone)
        window_end = local_instant(day + timedelta(days=1), time(0), zone)
        first = window_start.astimezone(self.zone).date() - timedelta(days=1)
        last = window_end.astimezone(self.zone).date()
        slots: list[Slot] = []
        event_day = first
        while event_day <= last:
            slots.extend(s for s in self.slots_on_event_day(event_day) if window_start <= s.start < window_end)
            event_day += timedelta(days=1)
        return tuple(slots)

    def event_day_of(self, instant: datetime) -> date:
        return instant.astimezone(self.zone).date()

    def slot_starting_at(self, instant: datetime) -> Slot | None:
        """The slot that starts exactly at ``instant``, or None if none does."""
        # In UTC: an instant in a fall-back hour never equals one in another zone (PEP 495).
        instant = instant.astimezone(UTC)
        for slot in self.slots_on_event_day(self.event_day_of(instant)):
            if slot.start == instant:
                return slot
        return None

    def is_blocked(self, slot: Slot) -> bool:
        return any(self._blocks(b, slot) for b in self.blackouts)

    def _blocks(self, blackout: Blackout, slot: Slot) -> bool:
        if isinstance(blackout, Window):
            return slot.overlaps(blackout.start, blackout.end)
        day = self.event_day_of(slot.start)
        return slot.overlaps(local_instant(day, blackout.start_time, self.zone), local_instant(day, blackout.end_time, self.zone))


@lru_cache(maxsize=4096)
def _slots_on_local_day(schedule: Schedule, day: date, zone: ZoneInfo) -> tuple[Slot, ...]:
    return schedule._compute_slots_on_local_day(day, zone)
