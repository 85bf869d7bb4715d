"""Rebuilding the counters from the system of record, never showing booking a half-built state."""

import asyncio
import logging
import time
from dataclasses import dataclass, field
from uuid import UUID, uuid4

from availability.adapters.record import SystemOfRecord
from common.capacity import CapacityStore, event_counters

log = logging.getLogger(__name__)


@dataclass
class RebuildReport:
    events: int = 0
    shifts: int = 0
    bookings: int = 0
    skipped: list[str] = field(default_factory=list)  # events another rebuild was holding
    seconds: float = 0.0


class Rebuilder:
    def __init__(self, store: CapacityStore, record: SystemOfRecord, settle_seconds: float, flag_seconds: float) -> None:
        self._store = store
        self._record = record
        self._settle_seconds = settle_seconds
        self._flag_seconds = flag_seconds

    async def rebuild(self, event_id: UUID | None = None) -> RebuildReport:
        """Rebuild one event's counters, or every event's.

        Each event is flagged first: from then on takes are refused and shift changes wait. After a
        short settle (bookings that took capacity before the flag commit or give it back), the
        counters are computed from a fresh snapshot and swapped in with one script.
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
            usage = await self._record.usage(event_id)
            for record in records:
                if record.event.id not in flagged:
                    continue  # created after the listing: the consumer builds it as usual
                bookings = usage.get(record.event.id, [])
                counters = event_counters(record.sequence, record.event, record.shifts, bookings)
                if await self._store.replace_event(record.event.id, counters, token):
                    swapped.add(record.event.id)
                    report.events += 1
                    report.shifts += len(record.shifts)
                    report.bookings += sum(u.count for u in bookings)
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

    async def watch(self, every_seconds: float) -> None:
        """Rebuild by ourselves when Redis has no counters (first start, or Redis lost its data)."""
        while True:
            if not await self._store.is_built():
                log.warning("no counters in Redis: rebuilding from the system of record")
                await self.rebuild_everything()
            await asyncio.sleep(every_seconds)
