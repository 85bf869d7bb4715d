"""What a client sees for a day: each slot's status, and why nothing is available. Pure."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

from common.schedule import Schedule, Slot


class SlotStatus(StrEnum):
    AVAILABLE = "available"
    FULL = "full"
    BLOCKED = "blocked"


class Reason(StrEnum):
    NO_EVENT = "no_event"
    NO_SHIFTS = "no_shifts"
    FULLY_BOOKED = "fully_booked"
    BLACKOUT = "blackout"


@dataclass(frozen=True)
class SlotView:
    slot: Slot
    status: SlotStatus
    remaining: int


@dataclass(frozen=True)
class DayView:
    slots: list[SlotView]
    reason: Reason | None


@dataclass(frozen=True)
class DayFrame:
    """A day apart from its counters: the slots and which of them are blocked."""

    slots: tuple[Slot, ...]
    blocked: tuple[bool, ...]


@lru_cache(maxsize=4096)
def day_frame(schedule: Schedule, day: date, zone: ZoneInfo) -> DayFrame:
    """Depends only on the event's definition, the day and the zone, so it is worked out once."""
    slots = schedule.slots_on_local_day(day, zone)
    return DayFrame(slots, tuple(schedule.is_blocked(slot) for slot in slots))


def day_view(frame: DayFrame, capacity: Sequence[int], remaining: Sequence[int]) -> DayView:
    views = []
    for slot, blocked, left in zip(frame.slots, frame.blocked, remaining, strict=True):
        if blocked:
            views.append(SlotView(slot, SlotStatus.BLOCKED, 0))
        else:
            left = max(left, 0)  # a shift shrunk under bookings can leave a slot over-committed
            views.append(SlotView(slot, SlotStatus.AVAILABLE if left > 0 else SlotStatus.FULL, left))
    return DayView(views, _reason(views, capacity))


def _reason(views: list[SlotView], capacity: Sequence[int]) -> Reason | None:
    if not views:
        return Reason.NO_EVENT
    if any(v.status is SlotStatus.AVAILABLE for v in views):
        return None
    open_capacity = [cap for v, cap in zip(views, capacity, strict=True) if v.status is not SlotStatus.BLOCKED]
    if not open_capacity:
        return Reason.BLACKOUT
    if not any(open_capacity):
        # Shifts lying only in blacked-out slots still leave the client nothing to book for that reason.
        return Reason.BLACKOUT if any(capacity) else Reason.NO_SHIFTS
    return Reason.FULLY_BOOKED
