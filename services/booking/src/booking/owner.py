"""The one owner of capacity, and the only writer of the capacity counters in Redis: applies every
change that can take capacity away, in one order with the bookings, and keeps the counters equal
to the record (rebuilds, repairs, hold expiry).

Shift and event changes arrive from ``shifts.events``. Each is applied, per event, under the
event's exclusive advisory lock (bookings and cancels take it shared): the record's projection of
shifts and event definitions is brought up to date, then the Redis counters, and then every
confirmed booking the record no longer gives a unit for is moved, in Redis and in the record, to
a unit within someone's capacity in its slot (its own professional's first), or kept and flagged
``needs_reschedule``. A booking that commits after the change is checked against the new record;
one committed before is seen by it.

Rebuilding an event, repairing its drift and giving back its expired holds take the same lock, so
they come in the same order as every change: the record cannot move under them, and the one
script that swaps the rebuilt counters in keeps the holds taken meanwhile. Nothing else (no flag,
no settle time, no other process) is needed for a rebuild never to undo a change or a booking.
"""

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar
from uuid import UUID

import asyncpg
from redis.exceptions import RedisError

from booking.adapters.capacity import CapacityStore, CountersLost
from booking.adapters.counters import differences, event_counters, holds_in
from booking.adapters.repository import BookingUnitOfWork, Repository
from booking.domain import Beyond, Booking, Coverage, beyond_capacity
from booking.metrics import AUDIT_FINDINGS, EVENT_REBUILDS, HOLDS_EXPIRED
from booking.service import booking_data
from booking.waitlist import Offers, entry_data, expired_entry
from common.contracts import BookingStatus, EventData, MovedBookingData, ShiftData, WaitlistStatus
from common.counters import KnownEvent
from common.events import BookingNeedsReschedule, BookingReassigned, Event, WaitlistExpired
from common.schedule import Schedule, Slot
from common.unit_of_work import CONNECTION_LOST

log = logging.getLogger(__name__)

T = TypeVar("T")


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


@dataclass
class RebuildReport:
    events: int = 0
    shifts: int = 0
    bookings: int = 0
    holds_kept: int = 0  # units taken for bookings not committed yet, carried into the rebuilt counters
    holds_dropped: int = 0  # holds on units the record gives to no one else's room: their commits are refused
    seconds: float = 0.0


@dataclass
class ReconcileReport:
    events_checked: int = 0
    holds_expired: int = 0  # given back: their bookings never committed
    holds_of_committed: int = 0  # dropped, the unit kept: their bookings committed (the confirm step failed)
    repaired: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # event -> key -> fields that differed
    beyond: list[dict] = field(default_factory=list)  # upcoming bookings the record gave no unit for, moved or flagged
    seconds: float = 0.0


def now_ms() -> int:
    return int(time.time() * 1000)


class CapacityOwner:
    def __init__(self, units_of_work: Callable[..., BookingUnitOfWork], store: CapacityStore, offers: Offers) -> None:
        self._uow = units_of_work
        self._store = store
        self._offers = offers

    # -- changes ---------------------------------------------------------------------------------

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
        that did not see it is checked against the same record it took from, or refused. An event
        with no counters (new, or lost with Redis's data) is built whole from the record instead,
        this change included: applied alone, the change would make a partial event.
        """

        async def change(uow: BookingUnitOfWork) -> AuditReport:
            await change_record(uow.record)
            try:
                await change_counters()
            except CountersLost:
                await self._rebuild_event(uow, event_id)
            return await self._settle(uow, event_id, professional)

        await self._exclusively(event_id, change)

    async def settle(self, event_id: UUID | None = None) -> AuditReport:
        """Move or flag every confirmed booking the record gives no unit for (none, normally): the
        repair an audit that found something calls for."""
        report = AuditReport()
        for each in await self._event_ids(event_id):
            _add(report, await self._exclusively(each, partial(self._settle, event_id=each, professional=None)))
        return report

    async def _exclusively(self, event_id: UUID, work: Callable[[BookingUnitOfWork], Awaitable[T]]) -> T:
        """``work`` in one transaction under the event's exclusive lock: the one order of every
        change, rebuild and repair of the event, and of its bookings and cancels (which take the
        lock shared). Should the counters vanish midway (Redis lost its data), the transaction is
        rolled back and ``work`` tried once more on the event rebuilt from the record."""
        rebuild_first = False
        while True:
            try:
                async with self._uow() as uow:
                    await uow.record.lock_event(event_id, exclusive=True)
                    if rebuild_first:
                        await self._rebuild_event(uow, event_id)
                    return await work(uow)
            except CountersLost:
                if rebuild_first:
                    raise
                rebuild_first = True

    # -- the counters, kept equal to the record ---------------------------------------------------

    async def rebuild(self, event_id: UUID | None = None) -> RebuildReport:
        """Build the counters of one event, or of every event, from the record; each under its
        event's exclusive lock, swapped in at once, holds in flight kept."""
        started, report = time.monotonic(), RebuildReport()
        for each in await self._event_ids(event_id, defined_only=True):
            part = await self._exclusively(each, partial(self._rebuild_event, event_id=each))
            if part is not None:
                report.events += 1
                report.shifts += part.shifts
                report.bookings += part.bookings
                report.holds_kept += part.holds_kept
                report.holds_dropped += part.holds_dropped
        report.seconds = round(time.monotonic() - started, 3)
        return report

    async def _rebuild_event(self, uow: BookingUnitOfWork, event_id: UUID) -> RebuildReport | None:
        """Under the event's exclusive lock: its counters from the record. None when the record has
        no definition of it yet (its counters are built when one arrives)."""
        record = await uow.record.capacity_record(event_id)
        if record is None:
            return None
        units = await uow.record.units_held(event_id)
        waiting = await self._waiting(uow, event_id, {h.taken.booking_id for h in await self._store.holds(event_id)})
        kept, dropped = await self._store.replace_event(
            event_id, event_counters(record.sequence, record.event, record.shifts, units, waiting=waiting)
        )
        log.info("rebuilt the counters of event %s: %d bookings, %d holds kept, %d dropped", event_id, len(units), kept, dropped)
        EVENT_REBUILDS.inc()
        return RebuildReport(1, len(record.shifts), len(units), kept, dropped)

    async def rebuild_everything(self) -> RebuildReport | None:
        """Every event's counters, then the marker that says they exist (an operator's command);
        one instance at a time. None when another instance is doing it."""
        async with self._uow() as duty:
            if not await duty.record.try_duty("rebuild"):
                return None
            report = await self.rebuild()
            await self._store.mark_built()
        log.info("rebuilt every event's counters: %s", report)
        return report

    async def rebuild_missing(self) -> list[UUID]:
        """Rebuild the events that have no counters: all of them when Redis lost its data, or what
        one lost master of a Redis Cluster held, and those alone. Instances running this at once
        share the work (each event is rebuilt once, under its lock). Once none is missing, the
        marker that says the counters exist is set. Returns the events rebuilt here."""
        async with self._uow() as uow:
            defined = await uow.record.defined_events()
        rebuilt = []
        for event_id in await self._store.missing(defined):

            async def if_still_missing(uow: BookingUnitOfWork, event_id: UUID = event_id) -> bool:
                if not await self._store.missing([event_id]):
                    return False  # another instance was first
                return await self._rebuild_event(uow, event_id) is not None

            if await self._exclusively(event_id, if_still_missing):
                rebuilt.append(event_id)
        if rebuilt:
            log.warning("rebuilt %d events whose counters were gone", len(rebuilt))
        if not await self._store.is_built() and not await self._store.missing(defined):
            await self._store.mark_built()
        return rebuilt

    async def expire_holds(self) -> tuple[int, int]:
        """Give back the units of expired holds whose bookings never committed; drop the holds of
        bookings that did (their confirm step failed: the unit stays theirs). Returns (given back,
        dropped). Costs one Redis round trip when no hold has expired."""
        async with self._uow() as uow:
            defined = await uow.record.defined_events()
        expired = dropped = 0
        for event_id in await self._store.expired_holds(defined, now_ms()):
            given_back, kept = await self._exclusively(event_id, partial(self._expire, event_id=event_id))
            expired, dropped = expired + given_back, dropped + kept
        return expired, dropped

    async def _expire(self, uow: BookingUnitOfWork, event_id: UUID) -> tuple[int, int]:
        """Under the event's exclusive lock, so no commit of these bookings is in flight: the record
        says for certain which of them committed."""
        known = await self._store.event(event_id)
        holds = await self._store.holds(event_id)
        if known is None or not holds:
            return 0, 0
        committed = await uow.record.recorded([h.taken.booking_id for h in holds])
        expired = kept = 0
        lapsed_offers = []
        for hold in holds:
            booking_id = hold.taken.booking_id
            if booking_id in committed:  # a booking's (or a claimed offer's: the booking has the entry's id)
                kept += await self._store.confirm(event_id, booking_id)
            elif hold.expires_ms <= now_ms():
                start = datetime.fromtimestamp(int(hold.taken.slot), UTC)
                slot = Slot(start, start + known.schedule.slot_length)
                released = await self._store.release(known, slot, booking_id, held_only=True)
                if hold.offer:
                    lapsed_offers.append(booking_id)
                else:
                    expired += released
        for entry in await uow.record.entries(lapsed_offers, lock=True):
            if entry.status in (WaitlistStatus.OFFERED.value, WaitlistStatus.WAITING.value):
                gone = expired_entry(entry)
                await uow.record.save_entry(gone)
                uow.publish(WaitlistExpired.of(gone.id, gone.sequence, entry_data(gone)))
        if lapsed_offers:
            log.info("event %s: %d waitlist offers expired", event_id, len(lapsed_offers))
            uow.after_commit(lambda: self._offers.make(event_id))  # to the next waiters
        HOLDS_EXPIRED.inc(expired)
        if expired or kept:
            log.info("event %s: %d expired holds given back, %d holds of committed bookings dropped", event_id, expired, kept)
        return expired, kept

    async def reconcile(self, event_id: UUID | None = None) -> ReconcileReport:
        """Compare every event's counters with the record and repair (rebuild) where they differ;
        move or flag bookings the record gives no unit for. Each event is looked at first without
        its lock, while bookings go on: equal counters and no booking beyond capacity, the usual
        case, need nothing more. Anything else is looked at again under the event's exclusive lock,
        where the record holds still and the counters are read in one step, so a difference found
        there is drift, never a booking in flight, and is repaired there."""
        started, report = time.monotonic(), ReconcileReport()
        for each in await self._event_ids(event_id, defined_only=True):
            async with self._uow() as uow:
                suspect = await self._drift(uow, each) or await self._beyond_now(uow, each)
            report.events_checked += 1
            if not suspect:
                continue
            part = await self._exclusively(each, partial(self._repair, event_id=each))
            report.holds_expired += part.holds_expired
            report.holds_of_committed += part.holds_of_committed
            report.repaired |= part.repaired
            report.beyond += part.beyond
        report.seconds = round(time.monotonic() - started, 3)
        return report

    async def _drift(self, uow: BookingUnitOfWork, event_id: UUID) -> dict[str, list[str]]:
        """Where the counters differ from what the record (and the holds read with the counters)
        gives. Exact under the event's exclusive lock; without it, a booking in flight may show."""
        record = await uow.record.capacity_record(event_id)
        if record is None:
            return {}
        units = await uow.record.units_held(event_id)
        live = await self._store.raw(event_id)
        committed = {u.booking_id for u in units}
        holds = [h for h in holds_in(live) if h.taken.booking_id not in committed]  # others: confirm is on its way
        live["holds"] = {b: h for b, h in live["holds"].items() if UUID(b) not in committed}
        live["hold_expiry"] = {b: t for b, t in live["hold_expiry"].items() if UUID(b) not in committed}
        waiting = await self._waiting(uow, event_id, {h.taken.booking_id for h in holds})
        return differences(live, event_counters(record.sequence, record.event, record.shifts, units, holds, waiting))

    async def _waiting(self, uow: BookingUnitOfWork, event_id: UUID, held: set[UUID]) -> dict[str, list[UUID]]:
        """Each slot's waitlist from the record, but the entries holding an offer in the counters
        (an offer the counters lost is made again: the entry goes back to the head of its queue)."""
        return {slot: [e for e in entries if e not in held] for slot, entries in (await uow.record.waiting(event_id)).items()}

    async def _beyond_now(self, uow: BookingUnitOfWork, event_id: UUID) -> bool:
        definition, bookings, shifts = await self._record(uow.record, event_id, None, lock=False, future_only=True)
        return bool(_beyond(bookings, shifts, definition.schedule() if definition else None))

    async def _repair(self, uow: BookingUnitOfWork, event_id: UUID) -> ReconcileReport:
        """Under the event's exclusive lock: holds expired, drift rebuilt, bookings beyond capacity
        moved or flagged."""
        report = ReconcileReport()
        report.holds_expired, report.holds_of_committed = await self._expire(uow, event_id)
        if drift := await self._drift(uow, event_id):
            log.warning("reconcile repairs event %s: %s", event_id, drift)
            AUDIT_FINDINGS.labels("drift").inc()
            await self._rebuild_event(uow, event_id)
            report.repaired[str(event_id)] = drift
        report.beyond = (await self._settle(uow, event_id, None)).beyond
        return report

    async def watch(self, check_seconds: float, reconcile_seconds: float) -> None:
        """Keep the counters equal to the record, in every instance: rebuild the events whose
        counters are gone (first start, Redis lost its data, a cluster lost a master); give back
        expired holds; reconcile every ``reconcile_seconds`` (one instance at a time)."""
        last_reconcile = time.monotonic()
        while True:
            try:
                await self.rebuild_missing()
                await self.expire_holds()
                await self._offers.make_everywhere(await self._event_ids(None, defined_only=True))
                if time.monotonic() - last_reconcile >= reconcile_seconds:
                    last_reconcile = time.monotonic()
                    await self._reconcile_once()
            except (RedisError, asyncpg.PostgresError, *CONNECTION_LOST) as exc:  # a server away: look again soon
                log.warning("could not look after the counters (%r); trying again", exc)
            await asyncio.sleep(check_seconds)

    async def _reconcile_once(self) -> ReconcileReport | None:
        """A reconcile pass, unless another instance is making one."""
        async with self._uow() as duty:
            if not await duty.record.try_duty("reconcile"):
                return None
            report = await self.reconcile()
        if report.repaired or report.beyond:
            log.warning("reconcile: %s", report)
        return report

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

    async def _event_ids(self, event_id: UUID | None, defined_only: bool = False) -> list[UUID]:
        if event_id is not None:
            return [event_id]
        async with self._uow() as uow:
            return await (uow.record.defined_events() if defined_only else uow.record.event_ids())

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
            had_it = booking_data(row).professional
            if placed is not None:
                pro = placed.professional
                row.professional_id, row.professional_name = pro.id, pro.name
                row.professional_email, row.professional_timezone = pro.email, pro.timezone
                row.unit = placed.unit
                row.assignment = {"eligible": placed.eligible, "random": chance, "reassigned": True}
                kind, reason = BookingReassigned, "the professional's shift changed; another professional takes it"
                report.moved += 1
                AUDIT_FINDINGS.labels("moved").inc()
            else:
                row.status = BookingStatus.NEEDS_RESCHEDULE.value
                kind = BookingNeedsReschedule
                reason = (
                    "the event's hours changed; the slot is no longer open"
                    if beyond.blocked
                    else "the professional's shift changed and nobody else is free then"
                )
                report.flagged += 1
                AUDIT_FINDINGS.labels("flagged").inc()
            await uow.record.save(row)  # one unit per row at a time: the unique index sees each move alone
            data = booking_data(row, reason)
            if kind is BookingReassigned:  # the professional who lost it is told too (their calendar entry cancelled)
                data = MovedBookingData(**data.model_dump(), previous_professional=had_it)
            uow.publish(kind.of(row.id, row.sequence, data))
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
