"""The one owner of capacity: applies every change that can take capacity away, in one order with
the bookings.

Shift and event changes arrive from ``shifts.events``. Each is applied, per event, under the
event's exclusive advisory lock (bookings and cancels take it shared): the record's projection of
shifts and event definitions is brought up to date, then the Redis counters, and then every
confirmed booking the record no longer gives a unit for is moved, in Redis and in the record, to
a unit within someone's capacity in its slot (its own professional's first), or kept and flagged
``needs_reschedule``. A booking that commits after the change is checked against the new record;
one committed before is seen by it. Nothing else writes capacity.
"""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import partial
from uuid import UUID

import asyncpg

from booking.adapters.repository import BookingUnitOfWork, Repository
from booking.domain import Beyond, Booking, Coverage, beyond_capacity
from booking.service import booking_data
from common.capacity import CapacityStore, KnownEvent, Rebuilding
from common.contracts import BookingStatus, EventData, ShiftData
from common.errors import try_again
from common.events import BookingNeedsReschedule, BookingReassigned, Event
from common.schedule import Schedule, Slot

log = logging.getLogger(__name__)

REBUILD_WAIT_SECONDS = 120.0  # a change waits this long for its event's rebuild, then fails (retried later)
REBUILD_PAUSE_SECONDS = 0.1  # between a change's tries while its event is rebuilt
LOCKS_PER_TRANSACTION = 50  # advisory locks share PostgreSQL's lock table: a snapshot holds at most these at once


@dataclass
class AuditReport:
    """What the record alone says: every confirmed booking holds a unit within its professional's
    active capacity in a bookable slot, and no unit is held twice."""

    events: int = 0
    confirmed: int = 0
    beyond: list[dict] = field(default_factory=list)  # bookings the record gives no unit for
    moved: int = 0  # when repairing: moved to a unit within someone's capacity
    flagged: int = 0  # when repairing: kept, flagged needs_reschedule

    @property
    def clean(self) -> bool:
        return not self.beyond

    def as_dict(self) -> dict:
        return asdict(self) | {"clean": self.clean}


def bookable_in(schedule: Schedule) -> Callable[[datetime, datetime], bool]:
    def bookable(start: datetime, end: datetime) -> bool:
        slot = schedule.slot_starting_at(start)
        return slot is not None and slot.end == end and not schedule.is_blocked(slot)

    return bookable


class CapacityOwner:
    def __init__(self, units_of_work: Callable[..., BookingUnitOfWork], store: CapacityStore) -> None:
        self._uow = units_of_work
        self._store = store

    async def apply_event_change(self, change: Event[EventData]) -> None:
        """An event's hours, dates or blackouts changed (the whole event, newest sequence kept)."""
        definition, sequence = change.data, change.sequence
        await self._apply(
            definition.id,
            lambda record: record.keep_newest_event(definition, sequence),
            lambda: self._store.apply_event(sequence, definition),
        )

    async def apply_shift_change(self, change: Event[ShiftData]) -> None:
        """A shift was added, changed or cancelled (the whole shift, newest sequence kept)."""
        shift, sequence = change.data, change.sequence
        await self._apply(
            shift.event_id,
            lambda record: record.keep_newest_shift(shift, sequence),
            lambda: self._store.apply_shift(sequence, shift),
            shift.professional_id,
        )

    async def _apply(
        self,
        event_id: UUID,
        change_record: Callable[[Repository], Awaitable[None]],
        change_counters: Callable[[], Awaitable[bool]],
        professional: UUID | None = None,
    ) -> None:
        """A change, applied to the record, the counters and the bookings under it, in one
        transaction under the event's exclusive lock.

        The counters are changed inside the exclusive section: a take that sees the change commits
        after it (its shared lock waits for ours) and is checked against the changed record; a take
        that did not see it is checked against the same record it took from, or refused.
        """

        async def change(uow: BookingUnitOfWork) -> AuditReport:
            await change_record(uow.record)
            await change_counters()
            return await self._settle(uow, event_id, professional)

        await self._exclusively(event_id, change)

    async def settle(self, event_id: UUID | None = None) -> AuditReport:
        """Move or flag every confirmed booking the record gives no unit for (none, normally): the
        repair an audit that found something calls for."""
        report = AuditReport()
        for each in await self._event_ids(event_id):
            _add(report, await self._exclusively(each, partial(self._settle, event_id=each, professional=None)))
        return report

    async def _exclusively(self, event_id: UUID, work: Callable[[BookingUnitOfWork], Awaitable[AuditReport]]) -> AuditReport:
        """``work`` in one transaction under the event's exclusive lock. While the event's counters
        are rebuilt, or not built at all (Redis lost its data), the transaction is rolled back and
        tried again after a pause, so the lock is never held while waiting: a rebuild waits for
        this lock before reading the record, and must not be waited for in turn. A change already
        made to Redis may be undone by the rebuild's swap meanwhile: it is made again on the next
        try (its sequence is newer than the record's)."""
        async with asyncio.timeout(REBUILD_WAIT_SECONDS):
            while True:
                try:
                    if not await self._store.is_built():
                        raise Rebuilding("counters not built")  # changed now, they would be partial
                    async with self._uow() as uow:
                        await uow.record.lock_event(event_id, exclusive=True)
                        return await work(uow)
                except Rebuilding:
                    await asyncio.sleep(REBUILD_PAUSE_SECONDS)

    async def audit(self, event_id: UUID | None = None) -> AuditReport:
        """The record's audit, read only: from PostgreSQL alone."""
        report = AuditReport()
        async with self._uow() as uow:
            for each in await self._event_ids(event_id):
                definition, bookings, shifts = await self._record(uow.record, each, None, lock=False, future_only=False)
                report.events += 1
                report.confirmed += len(bookings)
                schedule = definition.schedule() if definition else None
                for beyond in _beyond(bookings, shifts, schedule):
                    report.beyond.append(_describe(beyond))
        return report

    async def snapshot(self, event_id: UUID | None = None) -> list[dict]:
        """Every event of the record (or one) with its sequence and its shifts as applied here: what
        the counters are rebuilt from, so a rebuild never offers capacity the record does not give.

        Read once every change in flight has ended: the owner writes Redis before it commits, and
        a rebuild (which has flagged the events, so no change reaches Redis after this) that read
        the record in between would undo a change about to commit. 503 when an event's change
        lasts longer than the lock timeout (the rebuild lets its flags go and tries again later)."""
        try:
            ids = await self._event_ids(event_id)
            for start in range(0, len(ids), LOCKS_PER_TRANSACTION):
                async with self._uow() as uow:
                    await uow.record.wait_for_changes(ids[start : start + LOCKS_PER_TRANSACTION])
        except asyncpg.LockNotAvailableError as exc:
            raise try_again("An event's capacity is changing; read the record again in a moment.") from exc
        async with self._uow() as uow:
            return await uow.record.snapshot(event_id)

    async def _event_ids(self, event_id: UUID | None) -> list[UUID]:
        if event_id is not None:
            return [event_id]
        async with self._uow() as uow:
            return await uow.record.event_ids()

    @staticmethod
    async def _record(
        record: Repository, event_id: UUID, professional: UUID | None, lock: bool, future_only: bool
    ) -> tuple[EventData | None, list[Booking], list[Coverage]]:
        definition = await record.event_definition(event_id)
        bookings = await record.confirmed(event_id, professional, future_only=future_only, lock=lock)
        return definition, bookings, await record.coverage(event_id)

    async def _settle(self, uow: BookingUnitOfWork, event_id: UUID, professional: UUID | None) -> AuditReport:
        """Under the event's exclusive lock: each future confirmed booking (of ``professional``, or
        of everyone) the record gives no unit for is moved in Redis, then in the record, or flagged."""
        report = AuditReport(events=1)
        definition, bookings, shifts = await self._record(uow.record, event_id, professional, lock=True, future_only=True)
        report.confirmed = len(bookings)
        schedule = definition.schedule() if definition else None
        found = _beyond(bookings, shifts, schedule)
        if not found:
            return report
        assert definition is not None  # bookings exist only on events the record defines
        known = KnownEvent(0, definition, schedule)
        for beyond in found:
            row = beyond.booking
            report.beyond.append(_describe(beyond))
            chance = random.random()
            slot = Slot(row.slot_start, row.slot_end)
            placed = await self._store.relocate(known, slot, row.id, row.professional_id, chance, beyond.blocked)
            if placed is not None and placed.professional.id == row.professional_id:
                row.unit = placed.unit  # their own professional still has room: another unit, nothing to tell
                await uow.record.save(row)  # one unit per row at a time: the unique index sees each move alone
                continue
            row.sequence += 1
            if placed is not None:
                pro = placed.professional
                row.professional_id, row.professional_name = pro.id, pro.name
                row.professional_email, row.professional_timezone = pro.email, pro.timezone
                row.unit = placed.unit
                row.assignment = {"eligible": placed.eligible, "random": chance, "reassigned": True}
                kind, reason = BookingReassigned, "the professional's shift changed; another professional takes it"
                report.moved += 1
            else:
                row.status = BookingStatus.NEEDS_RESCHEDULE.value
                kind = BookingNeedsReschedule
                reason = (
                    "the event's hours changed; the slot is no longer open"
                    if beyond.blocked
                    else "the professional's shift changed and nobody else is free then"
                )
                report.flagged += 1
            await uow.record.save(row)  # one unit per row at a time: the unique index sees each move alone
            uow.publish(kind.of(row.id, row.sequence, booking_data(row, reason)))
            log.info("%s %s (%s)", kind.routing_key, row.id, reason)
        return report


def _beyond(bookings, shifts: list[Coverage], schedule: Schedule | None) -> list[Beyond]:
    return beyond_capacity(bookings, shifts, bookable_in(schedule) if schedule else lambda start, end: False)


def _describe(beyond: Beyond) -> dict:
    b = beyond.booking
    return {
        "booking_id": str(b.id),
        "slot": b.slot_start.isoformat(),
        "professional_id": str(b.professional_id),
        "unit": b.unit,
        "capacity": beyond.capacity,
        "blocked": beyond.blocked,
    }


def _add(total: AuditReport, part: AuditReport) -> None:
    total.events += part.events
    total.confirmed += part.confirmed
    total.beyond += part.beyond
    total.moved += part.moved
    total.flagged += part.flagged
