"""What a client sees for a day: each slot's status, and why nothing is available. Pure."""

from dataclasses import dataclass
from enum import StrEnum

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


def day_view(schedule: Schedule, slots: list[Slot], capacity: list[int], remaining: list[int]) -> DayView:
    views = []
    for slot, left in zip(slots, remaining, strict=True):
        if schedule.is_blocked(slot):
            views.append(SlotView(slot, SlotStatus.BLOCKED, 0))
        else:
            left = max(left, 0)  # a shift shrunk under bookings can leave a slot over-committed
            views.append(SlotView(slot, SlotStatus.AVAILABLE if left > 0 else SlotStatus.FULL, left))
    return DayView(views, _reason(views, capacity))


def _reason(views: list[SlotView], capacity: list[int]) -> Reason | None:
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
