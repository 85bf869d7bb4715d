"""Booking rules free of I/O."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID


class BookedSlot(Protocol):
    id: UUID
    slot_start: datetime
    slot_end: datetime
    created_at: datetime


@dataclass(frozen=True)
class Coverage:
    """One active shift of a professional: where and how many clients at once."""

    start: datetime
    end: datetime
    capacity: int


def bookings_beyond_coverage(bookings: Sequence[BookedSlot], shifts: Sequence[Coverage]) -> list[BookedSlot]:
    """A professional's confirmed bookings that their active shifts no longer give room for: per
    slot, those beyond the capacity of the shift covering it (all, where none does). The oldest
    bookings keep their place."""
    by_slot: dict[datetime, list[BookedSlot]] = defaultdict(list)
    for booking in bookings:
        by_slot[booking.slot_start].append(booking)
    beyond = []
    for slot_start, in_slot in by_slot.items():
        slot_end = in_slot[0].slot_end
        room = sum(s.capacity for s in shifts if s.start <= slot_start and slot_end <= s.end)
        beyond.extend(sorted(in_slot, key=lambda b: (b.created_at, b.id))[room:])
    return sorted(beyond, key=lambda b: (b.slot_start, b.created_at, b.id))
