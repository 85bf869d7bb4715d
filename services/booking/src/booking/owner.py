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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from booking.adapters.db import BookingRow, EventDefinitionRow, ShiftRow
from booking.domain import Beyond, Coverage, beyond_capacity
from booking.service import booking_data, event_lock
from common.capacity import CapacityStore, KnownEvent, Rebuilding
from common.contracts import BookingStatus, EventData, ShiftData
from common.events import BookingNeedsReschedule, BookingReassigned, Event
from common.schedule import Schedule, Slot
from common.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

REBUILD_WAIT_SECONDS = 120.0


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
    def __init__(self, units_of_work: Callable[[], UnitOfWork], store: CapacityStore) -> None:
        self._uow = units_of_work
        self._store = store

    async def apply_event_change(self, change: Event[EventData]) -> None:
        definition = change.data
        upsert = _newest(EventDefinitionRow, definition.id, change.sequence, doc=definition.model_dump(mode="json"))
        await self._apply(definition.id, upsert, self._store.apply_event, change.sequence, definition, None)

    async def apply_shift_change(self, change: Event[ShiftData]) -> None:
        shift = change.data
        upsert = _newest(
            ShiftRow,
            shift.id,
            change.sequence,
            event_id=shift.event_id,
            professional_id=shift.professional_id,
            start=shift.start,
            end=shift.end,
            capacity=shift.capacity,
            status=shift.status.value,
            doc=shift.model_dump(mode="json"),
        )
        await self._apply(shift.event_id, upsert, self._store.apply_shift, change.sequence, shift, shift.professional_id)

    async def _apply(self, event_id: UUID, upsert, apply_to_counters, sequence: int, state, professional: UUID | None) -> None:
        """A change, applied to the record, the counters and the bookings under it."""
        async with self._uow() as uow:
            await _lock_exclusively(uow.session, event_id)
            await uow.session.execute(upsert)
            # The counters inside the exclusive section: a take that sees the change commits after
            # it (its shared lock waits for ours) and is checked against the changed record; a take
            # that did not see it is checked against the same record it took from, or refused.
            await _apply_waiting_out_rebuilds(apply_to_counters, sequence, state)
            await self._settle(uow, event_id, professional)

    async def settle(self, event_id: UUID | None = None) -> AuditReport:
        """Move or flag every confirmed booking the record gives no unit for (none, normally): the
        repair an audit that found something calls for."""
        report = AuditReport()
        for each in await self._event_ids(event_id):
            async with self._uow() as uow:
                await _lock_exclusively(uow.session, each)
                found = await self._settle(uow, each, None)
            _add(report, found)
        return report

    async def audit(self, event_id: UUID | None = None) -> AuditReport:
        """The record's audit, read only: from PostgreSQL alone."""
        report = AuditReport()
        async with self._uow() as uow:
            for each in await self._event_ids(event_id):
                definition, bookings, shifts = await self._record(uow.session, each, None, lock=False, future_only=False)
                report.events += 1
                report.confirmed += len(bookings)
                schedule = definition.schedule() if definition else None
                for beyond in _beyond(bookings, shifts, schedule):
                    report.beyond.append(_describe(beyond))
        return report

    async def snapshot(self, event_id: UUID | None = None) -> list[dict]:
        """Every event of the record (or one) with its sequence and its shifts as applied here: what
        the counters are rebuilt from, so a rebuild never offers capacity the record does not give."""
        async with self._uow() as uow:
            session = uow.session
            events_query = select(EventDefinitionRow).order_by(EventDefinitionRow.id)
            shifts_query = select(ShiftRow).where(ShiftRow.doc.is_not(None)).order_by(ShiftRow.id)
            if event_id is not None:
                events_query = events_query.where(EventDefinitionRow.id == event_id)
                shifts_query = shifts_query.where(ShiftRow.event_id == event_id)
            events = (await session.scalars(events_query)).all()
            shifts = (await session.scalars(shifts_query)).all()
        by_event: dict[UUID, list[dict]] = {e.id: [] for e in events}
        for shift in shifts:
            if shift.event_id in by_event:
                by_event[shift.event_id].append({"sequence": shift.sequence, "shift": shift.doc})
        return [{"sequence": e.sequence, "event": e.doc, "shifts": by_event[e.id]} for e in events]

    async def _event_ids(self, event_id: UUID | None) -> list[UUID]:
        if event_id is not None:
            return [event_id]
        async with self._uow() as uow:
            defined = set((await uow.session.scalars(select(EventDefinitionRow.id))).all())
            booked = set((await uow.session.scalars(select(BookingRow.event_id).distinct())).all())
        return sorted(defined | booked, key=str)

    async def _record(self, session: AsyncSession, event_id: UUID, professional: UUID | None, lock: bool, future_only: bool):
        definition_row = await session.get(EventDefinitionRow, event_id)
        definition = EventData.model_validate(definition_row.doc) if definition_row else None
        bookings_query = select(BookingRow).where(
            BookingRow.event_id == event_id, BookingRow.status == BookingStatus.CONFIRMED.value
        )
        shifts_query = select(ShiftRow).where(ShiftRow.event_id == event_id, ShiftRow.status == "active")
        if professional is not None:
            bookings_query = bookings_query.where(BookingRow.professional_id == professional)
        if future_only:
            bookings_query = bookings_query.where(BookingRow.slot_start > datetime.now(UTC))
        if lock:
            bookings_query = bookings_query.with_for_update()
        bookings = (await session.scalars(bookings_query)).all()
        shifts = [Coverage(s.professional_id, s.start, s.end, s.capacity) for s in (await session.scalars(shifts_query)).all()]
        return definition, bookings, shifts

    async def _settle(self, uow: UnitOfWork, event_id: UUID, professional: UUID | None) -> AuditReport:
        """Under the event's exclusive lock: each future confirmed booking (of ``professional``, or
        of everyone) the record gives no unit for is moved in Redis, then in the record, or flagged."""
        report = AuditReport(events=1)
        definition, bookings, shifts = await self._record(uow.session, event_id, professional, lock=True, future_only=True)
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
            row.updated_at = datetime.now(UTC)
            if placed is not None and placed.professional.id == row.professional_id:
                row.unit = placed.unit  # their own professional still has room: another unit, nothing to tell
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
            await uow.session.flush()  # one unit per row at a time: the unique index sees each move alone
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


async def _apply_waiting_out_rebuilds(apply, sequence: int, definition) -> None:
    """Apply a change to the counters (idempotent by sequence). While the event is rebuilt the
    change waits: applied to the old counters it would be lost in the swap."""
    async with asyncio.timeout(REBUILD_WAIT_SECONDS):
        while True:
            try:
                await apply(sequence, definition)
                return
            except Rebuilding:
                await asyncio.sleep(0.05)


async def _lock_exclusively(session: AsyncSession, event_id: UUID) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": event_lock(event_id)})


def _newest(table, row_id: UUID, sequence: int, **values):
    """Insert, or update where this sequence is newer than the one kept: a duplicate or an older
    message changes nothing."""
    upsert = insert(table).values(id=row_id, sequence=sequence, **values)
    return upsert.on_conflict_do_update(
        index_elements=[table.id], set_={"sequence": sequence, **values}, where=table.sequence < upsert.excluded.sequence
    )
