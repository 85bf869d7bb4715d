"""Fakes of the booking service's ports, for unit tests of its use cases in milliseconds
(cosmicpython's ``FakeUnitOfWork`` and ``FakeRepository``):

- ``FakeDatabase``: its units of work are the real ``common.unit_of_work.UnitOfWork`` (publish,
  compensations, after-commit actions, a lost COMMIT answer), on tables in memory. A unit of work
  works on a copy of the tables; COMMIT puts the copy in their place.
- ``FakeRecord``: the repository's methods on those tables, with the record's own rules (the
  unit within its professional's active capacity; one booking per unit; one per Idempotency-Key).
- ``FakeCapacity``: the capacity store's methods the use cases call; what a take answers is set
  by the test, and every release and confirm is recorded.
"""

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from booking.adapters.capacity import Taken
from booking.adapters.repository import viewable_by
from booking.domain import Booking, Coverage, capacity_of
from common.auth import Identity
from common.contracts import BookingStatus, EventData, ShiftData, ShiftStatus
from common.counters import KnownEvent
from common.events import Event
from common.unit_of_work import UnitOfWork


@dataclass
class Tables:
    bookings: dict[UUID, Booking] = field(default_factory=dict)
    definitions: dict[UUID, tuple[int, EventData]] = field(default_factory=dict)
    shifts: dict[UUID, tuple[int, ShiftData]] = field(default_factory=dict)
    outbox: list[Event] = field(default_factory=list)


def _unique(constraint: str) -> asyncpg.UniqueViolationError:
    error = asyncpg.UniqueViolationError(f"duplicate key value violates unique constraint {constraint!r}")
    error.constraint_name = constraint
    return error


class FakeRecord:
    def __init__(self, tables: Tables) -> None:
        self.t = tables

    async def lock_event(self, event_id: UUID, exclusive: bool) -> None:
        pass  # one task at a time here

    async def add_confirmed(self, booking: Booking, definition_sequence: int, event: Event) -> bool:
        sequence, _ = self.t.definitions.get(booking.event_id, (None, None))
        if sequence is None or sequence > definition_sequence:
            return False
        shifts = await self.coverage(booking.event_id)
        capacity = capacity_of(booking.professional_id, booking.slot_start, booking.slot_end, shifts)
        if booking.unit > capacity:
            return False
        others = self.t.bookings.values()
        if booking.idempotency_key and any(
            (b.client_id, b.idempotency_key) == (booking.client_id, booking.idempotency_key) for b in others
        ):
            raise _unique("bookings_idempotency")
        held = (booking.event_id, booking.slot_start, booking.professional_id, booking.unit)
        if any((b.event_id, b.slot_start, b.professional_id, b.unit) == held for b in others if b.status == "confirmed"):
            raise _unique("bookings_one_per_unit")
        self.t.bookings[booking.id] = copy.deepcopy(booking)
        self.t.outbox.append(event)
        return True

    async def booking(self, booking_id: UUID, viewer: Identity | None = None, lock: bool = False) -> Booking | None:
        found = self.t.bookings.get(booking_id)
        client, professional = viewable_by(viewer)
        if found is None or client not in (None, found.client_id) or professional not in (None, found.professional_id):
            return None
        return copy.deepcopy(found)

    async def booking_for_key(self, client_id: UUID, idempotency_key: str) -> Booking | None:
        wanted = (client_id, idempotency_key)
        return next((copy.deepcopy(b) for b in self.t.bookings.values() if (b.client_id, b.idempotency_key) == wanted), None)

    async def has_booking(self, booking_id: UUID) -> bool:
        return booking_id in self.t.bookings

    async def save(self, booking: Booking) -> None:
        self.t.bookings[booking.id] = copy.deepcopy(booking)

    async def keep_newest_event(self, definition: EventData, sequence: int) -> None:
        if self.t.definitions.get(definition.id, (0, None))[0] < sequence:
            self.t.definitions[definition.id] = (sequence, definition)

    async def keep_newest_shift(self, shift: ShiftData, sequence: int) -> None:
        if self.t.shifts.get(shift.id, (0, None))[0] < sequence:
            self.t.shifts[shift.id] = (sequence, shift)

    async def event_definition(self, event_id: UUID) -> EventData | None:
        return self.t.definitions.get(event_id, (None, None))[1]

    async def confirmed(
        self, event_id: UUID, professional: UUID | None = None, future_only: bool = False, lock: bool = False
    ) -> list[Booking]:
        now = datetime.now(UTC)
        return [
            copy.deepcopy(b)
            for b in self.t.bookings.values()
            if b.event_id == event_id
            and b.status == BookingStatus.CONFIRMED.value
            and professional in (None, b.professional_id)
            and (not future_only or b.slot_start > now)
        ]

    async def coverage(self, event_id: UUID) -> list[Coverage]:
        return [
            Coverage(s.professional_id, s.start, s.end, s.capacity)
            for _, s in self.t.shifts.values()
            if s.event_id == event_id and s.status is ShiftStatus.ACTIVE
        ]


class FakeUnitOfWork(UnitOfWork):
    record: FakeRecord

    def __init__(self, database: "FakeDatabase") -> None:
        super().__init__(database.wake_relay)
        self._database = database

    async def _begin(self) -> None:
        self._database.begun += 1
        self.record = FakeRecord(copy.deepcopy(self._database.tables))

    async def _write(self, events: list[Event]) -> None:
        self.record.t.outbox += events

    async def _commit(self) -> None:
        lost, self._database.lose_commit_answer = self._database.lose_commit_answer, None
        if lost != "before":
            self._database.tables = self.record.t
        if lost:
            raise ConnectionResetError(f"the answer to COMMIT was lost ({lost} it took effect)")

    async def _rollback(self) -> None:
        pass

    async def _release(self) -> None:
        pass


class FakeDatabase:
    def __init__(self) -> None:
        self.tables = Tables()
        self.begun = 0  # units of work begun: a refusal must begin none
        self.wakes = 0
        self.lose_commit_answer: str | None = None  # "before" or "after" it took effect, once

    def wake_relay(self) -> None:
        self.wakes += 1

    def units_of_work(self):
        return lambda shared_lock=None: FakeUnitOfWork(self)


class FakeCapacity:
    def __init__(self) -> None:
        self.events: dict[UUID, KnownEvent] = {}
        self.takes: list = []  # what the next takes answer, in order
        self.released: list[UUID] = []
        self.confirmed: list[UUID] = []
        self.relocations: dict[UUID, Taken | None] = {}  # booking -> where relocate puts it

    def define(self, event: EventData, sequence: int = 1) -> None:
        self.events[event.id] = KnownEvent(sequence, event, event.schedule())

    def idempotency_key(self, event_id: UUID, client_id: UUID, key: str | None) -> str:
        return f"{event_id}:{client_id}:{key}"

    async def current_event(self, event_id: UUID) -> KnownEvent | None:
        return self.events.get(event_id)

    async def event(self, event_id: UUID) -> KnownEvent | None:
        return self.events.get(event_id)

    async def is_built(self) -> bool:
        return True

    async def take(self, known, slot, chance, booking_id, hold_seconds, record_key, fingerprint, limit):
        return self.takes.pop(0)

    async def earlier(self, record_key: str):
        return None

    async def confirm(self, event_id, booking_id, idempotency_key=None, answer=None, keep_seconds=0) -> bool:
        self.confirmed.append(booking_id)
        return True

    async def release(self, known, slot, booking_id, held_only=False, idempotency_key=None) -> bool:
        self.released.append(booking_id)
        return True

    async def relocate(self, known, slot, booking_id, professional_id, random, blocked=False) -> Taken | None:
        return self.relocations.get(booking_id)

    async def apply_event(self, sequence: int, data: EventData) -> bool:
        return True

    async def apply_shift(self, sequence: int, shift: ShiftData) -> bool:
        return True
