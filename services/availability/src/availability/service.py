"""The availability service's use case: a day's availability, read from the counters (which the
booking service, the owner of capacity, alone writes) and kept between their announced changes."""

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import date
from uuid import UUID

from redis.exceptions import RedisError

from availability.adapters.counters import Counters
from availability.api import day_answer
from availability.domain import DayKey, KeptAnswers
from common.errors import not_found, try_again
from common.schedule import zone_named
from common.web import RenderedJson, render_json

log = logging.getLogger(__name__)


class Availability:
    """What a client sees for a day. An answer is read from the counters (one Redis call: the
    event's sequence and the day's counters together), rendered once, and kept until a slot it
    shows is announced changed, or ``max_age`` has passed (``KeptAnswers``): a read of a kept
    answer costs no Redis call. One read per day at a time: requests that come while it is on its
    way take its answer."""

    def __init__(self, counters: Counters, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._counters = counters
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
        counts = await self._counters.day_counts(event_id, day, zone_named(zone_name) if zone_name else None)
        if counts is None:
            if not await self._counters.is_built():
                raise try_again("The counters are being rebuilt; try again in a moment.")
            raise not_found("event")
        zone = zone_named(zone_name) if zone_name else counts.event.schedule.zone
        answer = render_json(day_answer(counts.event.data, counts.event.schedule, day, zone, counts.capacity, counts.remaining))
        self.kept.keep(key, answer, tuple(slot.key for slot in counts.slots), read_at, started)
        return answer

    async def follow_changes(self, retry_seconds: float = 1.0) -> None:
        """Drop kept answers as the counters' changes are announced; keep none while not subscribed
        (an announcement may have been missed then)."""
        while True:
            try:
                async for change in self._counters.changes():
                    if change is None:
                        self.kept.follow()
                    else:
                        self.kept.changed(change.event_id, change.slot)
            except (RedisError, OSError) as exc:
                log.warning("not following the counters' changes (%r); answers are read afresh until then", exc)
            finally:
                self.kept.lost()
            await asyncio.sleep(retry_seconds)
