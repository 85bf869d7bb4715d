"""What a client sees for a day: each slot's status, and why nothing is available; and which
answers may be served again without reading the counters. Pure."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Generic, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from common.contracts import BookingRules, RuleBreach
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
    TOO_SOON = RuleBreach.TOO_SOON.value
    TOO_FAR = RuleBreach.TOO_FAR.value


@dataclass(frozen=True)
class SlotView:
    slot: Slot
    status: SlotStatus
    remaining: int
    breach: RuleBreach | None = None  # the booking rule that keeps it from being booked now


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


def day_view(frame: DayFrame, capacity: Sequence[int], remaining: Sequence[int], rules: BookingRules, now: datetime) -> DayView:
    """Each slot as a client may book it ``now``: blacked out or ruled out by the event's booking
    rules (begun, too soon, too far ahead: shown blocked, with no units), else available or full."""
    views = []
    for slot, blocked, left in zip(frame.slots, frame.blocked, remaining, strict=True):
        if blocked:
            views.append(SlotView(slot, SlotStatus.BLOCKED, 0))
        elif (breach := rules.breach(slot.start, now)) is not None:
            views.append(SlotView(slot, SlotStatus.BLOCKED, 0, breach))
        else:
            left = max(left, 0)  # a shift shrunk under bookings can leave a slot over-committed
            views.append(SlotView(slot, SlotStatus.AVAILABLE if left > 0 else SlotStatus.FULL, left))
    return DayView(views, _reason(views, capacity))


@dataclass(frozen=True)
class DaySummary:
    """A day at a glance, for a month view: whether anything can be booked, how many units."""

    available: bool
    remaining: int  # units of the slots that can be booked now
    reason: Reason | None  # why nothing can, as the day's own answer says


def summary(view: DayView) -> DaySummary:
    remaining = sum(v.remaining for v in view.slots if v.status is SlotStatus.AVAILABLE)
    return DaySummary(remaining > 0, remaining, view.reason)


def days_of_month(first: date) -> list[date]:
    """Every calendar day of ``first``'s month."""
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return [first + timedelta(days=n) for n in range((following - first).days)]


def _reason(views: list[SlotView], capacity: Sequence[int]) -> Reason | None:
    """Why nothing is available: said of the slots the rules let a client book (full, or without
    shifts); when the rules let none be booked, which rule; else the blackout."""
    if not views:
        return Reason.NO_EVENT
    if any(v.status is SlotStatus.AVAILABLE for v in views):
        return None
    bookable = [(v, cap) for v, cap in zip(views, capacity, strict=True) if v.status is not SlotStatus.BLOCKED]
    if not bookable:
        breaches = [v.breach for v in views if v.breach is not None]
        if breaches:
            return Reason.TOO_SOON if RuleBreach.TOO_SOON in breaches else Reason.TOO_FAR
        return Reason.BLACKOUT
    if not any(cap for _, cap in bookable):
        # Shifts lying only in blacked-out slots still leave the client nothing to book for that reason.
        return Reason.BLACKOUT if any(capacity) else Reason.NO_SHIFTS
    return Reason.FULLY_BOOKED


DayKey = tuple[UUID, date, str | None]  # (event, day, zone name; None: the event's own)
Answer = TypeVar("Answer")


@dataclass
class _Kept(Generic[Answer]):
    answer: Answer
    slots: frozenset[str]  # the slot keys the answer shows
    read_at: float  # when the read of its counters began


class KeptAnswers(Generic[Answer]):
    """Day answers kept between changes of their counters, so that a read costs no Redis call.

    An answer is dropped when a slot it shows is announced changed, or when its event is; and it
    is never served older than ``max_age`` (counted from when its read began), whatever was or was
    not announced: that is the bound on how far behind the counters a reader can be. Nothing is
    kept while the announcements are not followed (``following``), since one may have been missed.
    Pure: the caller passes the time, the announcements and the answers it read."""

    def __init__(self, max_age: float, max_kept: int = 10_000) -> None:
        self._max_age = max_age
        self._max_kept = max_kept
        self._kept: dict[DayKey, _Kept[Answer]] = {}
        self._by_slot: dict[tuple[UUID, str], set[DayKey]] = {}
        self._by_event: dict[UUID, set[DayKey]] = {}
        # Change numbers: a read started after change n keeps its answer only if none of its slots
        # (nor its event) changed after n, since it may have read the counters before the change.
        self._changes = 0
        self._changed_at: dict[tuple[UUID, str | None], int] = {}
        self._valid_since = 0  # reads started before this may have missed an announcement
        self.following = False

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, key: DayKey, now: float) -> Answer | None:
        kept = self._kept.get(key)
        if kept is None or not self.following or now - kept.read_at >= self._max_age:
            return None
        return kept.answer

    def slots_of(self, key: DayKey) -> frozenset[str] | None:
        """The slots a kept answer shows (None: none is kept)."""
        kept = self._kept.get(key)
        return None if kept is None else kept.slots

    def read_started(self) -> int:
        """The number a read about to begin passes back to ``keep``."""
        return self._changes

    def keep(self, key: DayKey, answer: Answer, slots: tuple[str, ...], read_at: float, started: int) -> bool:
        """Keep what a read that began at ``read_at`` (``read_started`` then) found, unless something
        it shows may have changed since. True when kept."""
        event_id = key[0]
        if not self.following or started < self._valid_since:
            return False
        if self._changed_at.get((event_id, None), -1) > started:
            return False
        if any(self._changed_at.get((event_id, slot), -1) > started for slot in slots):
            return False
        self._drop(key)
        if len(self._kept) >= self._max_kept:
            self._drop(next(iter(self._kept)))  # the one kept longest ago
        self._kept[key] = _Kept(answer, frozenset(slots), read_at)
        self._by_event.setdefault(event_id, set()).add(key)
        for slot in slots:
            self._by_slot.setdefault((event_id, slot), set()).add(key)
        return True

    def changed(self, event_id: UUID, slot: str | None) -> None:
        """A slot of the event (``slot`` None: anything of it) was announced changed."""
        self._changes += 1
        if len(self._changed_at) >= self._max_kept * 10:
            self._changed_at.clear()  # forget old change numbers; reads in flight keep nothing
            self._valid_since = self._changes
        self._changed_at[(event_id, slot)] = self._changes
        affected = self._by_event.get(event_id, set()) if slot is None else self._by_slot.get((event_id, slot), set())
        for key in list(affected):
            self._drop(key)

    def follow(self) -> None:
        """Announcements are followed from now on."""
        self._valid_since = self._changes = self._changes + 1
        self.following = True

    def lost(self) -> None:
        """Announcements may be missed from now on: forget everything, keep nothing."""
        self.following = False
        self._changes += 1
        self._valid_since = self._changes
        self._kept.clear()
        self._by_slot.clear()
        self._by_event.clear()
        self._changed_at.clear()

    def _drop(self, key: DayKey) -> None:
        kept = self._kept.pop(key, None)
        if kept is None:
            return
        self._by_event[key[0]].discard(key)
        if not self._by_event[key[0]]:
            del self._by_event[key[0]]
        for slot in kept.slots:
            keys = self._by_slot[(key[0], slot)]
            keys.discard(key)
            if not keys:
                del self._by_slot[(key[0], slot)]
