"""The availability service's use cases: a day's availability, read from the counters; and
rebuilding and reconciling the counters from the system of record, never showing booking a
half-built state."""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from uuid import UUID, uuid4

import aiohttp
from redis.exceptions import RedisError

from availability.adapters.record import EventRecord, SystemOfRecord
from availability.api import day_answer
from availability.domain import DayKey, KeptAnswers
from common.capacity import CapacityStore, Hold, UnitInUse, differences, event_counters, lasting_differences
from common.errors import not_found, try_again
from common.schedule import Slot, zone_named
from common.web import RenderedJson, render_json

log = logging.getLogger(__name__)


class Availability:
    """What a client sees for a day. An answer is read from the counters (one Redis call: the
    event's sequence and the day's counters together), rendered once, and kept until a slot it
    shows is announced changed, or ``max_age`` has passed (``KeptAnswers``): a read of a kept
    answer costs no Redis call. One read per day at a time: requests that come while it is on its
    way take its answer."""

    def __init__(self, store: CapacityStore, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._clock = clock
        self.kept: KeptAnswers[RenderedJson] = KeptAnswers(max_age)
        self._reading: dict[DayKey, asyncio.Future[RenderedJson | None]] = {}

    async def day(self, event_id: UUID, day: date, zone_name: str | None) -> RenderedJson:
        """The day's answer in ``zone_name`` (None: the event's own zone)."""
        key = (event_id, day, zone_name)
        if (kept := self.kept.get(key, self._clock())) is not None:
            return kept
        if (reading := self._reading.get(key)) is not None and (answer := await asyncio.shield(reading)) is not None:
            return answer
        reading = self._reading[key] = asyncio.get_running_loop().create_future()
        answer = None
        try:
            answer = await self._read(key)
        finally:
            reading.set_result(answer)  # None: whoever waited reads for themselves (and gets the error)
            if self._reading.get(key) is reading:
                del self._reading[key]
        return answer

    async def _read(self, key: DayKey) -> RenderedJson:
        event_id, day, zone_name = key
        started, read_at = self.kept.read_started(), self._clock()
        counts = await self._store.day_counts(event_id, day, zone_named(zone_name) if zone_name else None)
        if counts is None:
            if not await self._store.is_built():
                raise try_again("Availability is being rebuilt; try again in a moment.")
            raise not_found("event")
        zone = zone_named(zone_name) if zone_name else counts.event.schedule.zone
        answer = render_json(day_answer(event_id, counts.event.schedule, day, zone, counts.capacity, counts.remaining))
        self.kept.keep(key, answer, tuple(slot.key for slot in counts.slots), read_at, started)
        return answer

    async def follow_changes(self, retry_seconds: float = 1.0) -> None:
        """Drop kept answers as the counters' changes are announced; keep none while not subscribed
        (an announcement may have been missed then)."""
        while True:
            try:
                async for change in self._store.changes():
                    if change is None:
                        self.kept.follow()
                    else:
                        self.kept.changed(change.event_id, change.slot)
            except (RedisError, OSError) as exc:
                log.warning("not following the counters' changes (%r); answers are read afresh until then", exc)
            finally:
                self.kept.lost()
            await asyncio.sleep(retry_seconds)


@dataclass
class RebuildReport:
    events: int = 0
    shifts: int = 0
    bookings: int = 0
    holds_kept: int = 0
    skipped: list[str] = field(default_factory=list)  # events another rebuild was holding
    seconds: float = 0.0


@dataclass
class ReconcileReport:
    events_checked: int = 0
    holds_expired: int = 0
    holds_of_committed: int = 0  # holds whose booking the record has (its confirm step failed): dropped, unit kept
    record_audit: dict = field(default_factory=dict)  # the booking service's audit of the record (and its repair)
    repaired: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # event -> key -> fields that differed
    stopped: str | None = None  # why it did not go through every event
    seconds: float = 0.0


def now_ms() -> int:
    return int(time.time() * 1000)


def live_holds(holds: list[Hold], confirmed: list[UnitInUse], at_ms: int) -> list[Hold]:
    """Holds still counting: not expired, and for bookings not already confirmed in the record."""
    committed = {u.booking_id for u in confirmed}
    return [h for h in holds if h.expires_ms > at_ms and h.taken.booking_id not in committed]


class Rebuilder:
    def __init__(self, store: CapacityStore, record: SystemOfRecord, settle_seconds: float, flag_seconds: float) -> None:
        self._store = store
        self._record = record
        self._settle_seconds = settle_seconds
        self._flag_seconds = flag_seconds

    def _counters(self, record: EventRecord, confirmed: list[UnitInUse], holds: list[Hold]) -> dict:
        return event_counters(record.sequence, record.event, record.shifts, confirmed, holds)

    async def rebuild(self, event_id: UUID | None = None) -> RebuildReport:
        """Rebuild one event's counters, or every event's.

        Each event is flagged first: from then on takes are refused and shift changes wait. After a
        short settle (bookings that took capacity before the flag commit or give it back), the
        counters are computed from a fresh snapshot, keeping the holds still in flight, and swapped
        in with one script.
        """
        started, token, report = time.monotonic(), uuid4().hex, RebuildReport()
        listed = [record.event.id for record in await self._record.events(event_id)]
        flagged = []
        for listed_id in listed:
            if await self._store.begin_rebuild(listed_id, token, self._flag_seconds):
                flagged.append(listed_id)
            else:
                report.skipped.append(str(listed_id))
        swapped: set[UUID] = set()
        try:
            await asyncio.sleep(self._settle_seconds)
            records = await self._record.events(event_id)
            confirmed = await self._record.confirmed(event_id)
            for record in records:
                if record.event.id not in flagged:
                    continue  # created after the listing: the consumer builds it as usual
                units = confirmed.get(record.event.id, [])
                holds = live_holds(await self._store.holds(record.event.id), units, now_ms())
                if await self._store.replace_event(record.event.id, self._counters(record, units, holds), token):
                    swapped.add(record.event.id)
                    report.events += 1
                    report.shifts += len(record.shifts)
                    report.bookings += len(units)
                    report.holds_kept += len(holds)
                else:
                    report.skipped.append(str(record.event.id))
        finally:
            for unfinished in set(flagged) - swapped:
                await self._store.abandon_rebuild(unfinished, token)
        report.seconds = round(time.monotonic() - started, 3)
        log.info("rebuilt counters: %s", report)
        return report

    async def rebuild_everything(self, wait_seconds: float = 0.0) -> RebuildReport | None:
        """Rebuild every event under the global lock and mark the counters built.
        None when another instance holds the lock (and ``wait_seconds`` ran out)."""
        token = uuid4().hex
        deadline = time.monotonic() + wait_seconds
        while not await self._store.lock_rebuild(token, self._flag_seconds * 2):
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.2)
        try:
            report = await self.rebuild()
            await self._store.mark_built()
            return report
        finally:
            await self._store.unlock_rebuild(token)

    async def reconcile(self, event_id: UUID | None = None) -> ReconcileReport:
        """Free expired holds, compare every counter with the record, and repair (by a flagged
        rebuild of the event) where they differ. Reports what it repaired."""
        started, report = time.monotonic(), ReconcileReport()
        records = await self._record.events(event_id)
        confirmed = await self._record.confirmed(event_id)
        for record in records:
            if not await self._store.is_built():
                # Redis lost everything while we went through the events: repairing them one by
                # one (a second or more each) would leave the rest unanswerable meanwhile. Left to
                # the rebuild of everything, which the watch starts next.
                report.stopped = "the counters were lost; they are rebuilt all at once"
                log.warning("reconcile stopped after %d events: %s", report.events_checked, report.stopped)
                break
            report.events_checked += 1
            expired, kept = await self.expire_holds(record, confirmed.get(record.event.id, []))
            report.holds_expired += expired
            report.holds_of_committed += kept
            first = await self._look(record, confirmed.get(record.event.id, []))
            drift = differences(*first)
            if drift:
                # A booking in flight between reading the record and reading Redis looks like drift:
                # repair only what is still there, unchanged, on a second look from a fresh snapshot.
                await asyncio.sleep(self._settle_seconds)
                (fresh,) = await self._record.events(record.event.id)
                second = await self._look(fresh, (await self._record.confirmed(record.event.id)).get(record.event.id, []))
                drift = lasting_differences(first, second)
            if not drift:
                continue
            await self.rebuild(record.event.id)
            report.repaired[str(record.event.id)] = drift
            log.warning("reconcile repaired event %s: %s", record.event.id, drift)
        report.record_audit = await self._record.audit(event_id)
        if not report.record_audit.get("clean", True):
            log.error("the record holds bookings beyond capacity: %s", report.record_audit["beyond"])
            report.record_audit["repair"] = await self._record.settle(event_id)
        report.seconds = round(time.monotonic() - started, 3)
        return report

    async def _look(self, record: EventRecord, units: list[UnitInUse]):
        """(the counters in Redis, the counters the record gives)."""
        holds = live_holds(await self._store.holds(record.event.id), units, now_ms())
        return await self._store.raw(record.event.id), self._counters(record, units, holds)

    async def expire_holds(self, record: EventRecord, units: list[UnitInUse]) -> tuple[int, int]:
        """Give back the units of expired holds whose booking never committed; a hold whose booking
        the record has (its confirm step failed) is only dropped: the booking keeps its unit.
        Returns (given back, dropped)."""
        known = await self._store.event(record.event.id)
        if known is None:
            return 0, 0
        committed = {u.booking_id for u in units}
        expired = kept = 0
        for hold in await self._store.holds(record.event.id):
            if hold.taken.booking_id in committed:
                kept += await self._store.confirm(record.event.id, hold.taken.booking_id)
            elif hold.expires_ms <= now_ms():
                start = datetime.fromtimestamp(int(hold.taken.slot), UTC)
                slot = Slot(start, start + known.schedule.slot_length)
                expired += await self._store.release(known, slot, hold.taken.booking_id, held_only=True)
        return expired, kept

    async def watch(self, every_seconds: float, reconcile_seconds: float) -> None:
        """Rebuild by ourselves when Redis has no counters (first start, or Redis lost its data);
        reconcile every ``reconcile_seconds``."""
        last_reconcile = time.monotonic()
        while True:
            try:
                if not await self._store.is_built():
                    log.warning("no counters in Redis: rebuilding from the system of record")
                    await self.rebuild_everything()
                    last_reconcile = time.monotonic()
                elif time.monotonic() - last_reconcile >= reconcile_seconds:
                    await self.reconcile()
                    last_reconcile = time.monotonic()
            except aiohttp.ClientError as exc:  # e.g. the shifts service still starting: look again soon
                log.warning("system of record not reachable (%r); trying again", exc)
            await asyncio.sleep(every_seconds)
