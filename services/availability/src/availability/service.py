"""The availability service's use cases: a day's availability and a month's at a glance, read from
the counters (which the booking service, the owner of capacity, alone writes) and kept between
their announced changes."""

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import date
from uuid import UUID

from redis.exceptions import RedisError

from availability.adapters.counters import Counters
from availability.api import day_answer, month_answer
from availability.domain import DayKey, KeptAnswers, days_of_month
from availability.streams import DayFeed, Feeds, Listener, StreamSettings
from common.errors import not_found, try_again
from common.schedule import zone_named
from common.web import Rendered, render_json

log = logging.getLogger(__name__)


class Availability:
    """What a client sees for a day, or a month at a glance. An answer is read from the counters
    (one Redis call: the event's sequence and the counters of every slot it shows), rendered once,
    and kept until a slot it shows is announced changed, or ``max_age`` less ``edge_keep`` has
    passed (``KeptAnswers``): a read of a kept answer costs no Redis call, and the public entry may
    keep an answer it was given for ``edge_keep`` more, so that no answer a client gets is more than
    ``max_age`` behind the counters. One read per answer at a time: requests that come while it is
    on its way take its answer."""

    def __init__(
        self,
        counters: Counters,
        max_age: float,
        edge_keep: float,
        stream_settings: StreamSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._counters = counters
        self._stream_settings = stream_settings
        self._clock = clock
        self.edge_keep_ms = round(edge_keep * 1000)
        self.kept: KeptAnswers[Rendered] = KeptAnswers(max_age - edge_keep)  # days
        self.kept_months: KeptAnswers[Rendered] = KeptAnswers(max_age - edge_keep)
        self._reading: dict[tuple[bool, DayKey], asyncio.Future[Rendered | None]] = {}
        self.feeds = Feeds()  # the open streams

    async def day(self, event_id: UUID, day: date, zone_name: str | None) -> Rendered:
        """The day's answer in ``zone_name`` (None: the event's own zone)."""
        return await self._answer(False, (event_id, day, zone_name))

    async def month(self, event_id: UUID, first: date, zone_name: str | None) -> Rendered:
        """The month of ``first``, each day as its own answer would sum it up."""
        return await self._answer(True, (event_id, first, zone_name))

    async def follow_day(self, event_id: UUID, day: date, zone_name: str | None, listener: Listener) -> None:
        """Send ``listener`` the day's answer each time it changes, until it ends (its client is gone
        or behind, the process stops). Its first answer it was sent itself."""
        key = (event_id, day, zone_name)

        def feed() -> DayFeed:
            return DayFeed(key, lambda: self.day(*key), lambda: self.kept.slots_of(key), self._stream_settings, self._clock)

        with self.feeds.listening(listener, key, feed):
            await listener.ended.wait()

    async def _answer(self, whole_month: bool, key: DayKey) -> Rendered:
        kept = self.kept_months if whole_month else self.kept
        if (answer := kept.get(key, self._clock())) is not None:
            return answer
        if (reading := self._reading.get((whole_month, key))) is not None and (
            answer := await asyncio.shield(reading)
        ) is not None:
            return answer
        reading = self._reading[(whole_month, key)] = asyncio.get_running_loop().create_future()
        answer = None
        try:
            answer = await self._read(kept, whole_month, key)
        finally:
            reading.set_result(answer)  # None: whoever waited reads for themselves (and gets the error)
            if self._reading.get((whole_month, key)) is reading:
                del self._reading[(whole_month, key)]
        return answer

    async def _read(self, kept: KeptAnswers[Rendered], whole_month: bool, key: DayKey) -> Rendered:
        event_id, day, zone_name = key
        started, read_at = kept.read_started(), self._clock()
        days = days_of_month(day) if whole_month else [day]
        asked = zone_named(zone_name) if zone_name else None
        counted = await self._counters.days_counts(event_id, days, asked)
        if counted is None:
            if not await self._counters.is_built():
                raise try_again("The counters are being rebuilt; try again in a moment.")
            raise not_found("event")
        event = counted[0].event
        zone = asked or event.schedule.zone
        if whole_month:
            answer = render_json(month_answer(event.data, day, zone, counted))
        else:
            (counts,) = counted
            answer = render_json(day_answer(event.data, event.schedule, day, zone, counts.capacity, counts.remaining))
        kept.keep(key, answer, tuple(slot.key for counts in counted for slot in counts.slots), read_at, started)
        return answer

    async def follow_changes(self, retry_seconds: float = 1.0) -> None:
        """Drop kept answers as the counters' changes are announced; keep none while not subscribed
        (an announcement may have been missed then)."""
        while True:
            try:
                async for change in self._counters.changes():
                    if change is None:
                        self.kept.follow()
                        self.kept_months.follow()
                        self.feeds.wake_all()  # what was missed before subscribing
                    else:
                        self.kept.changed(change.event_id, change.slot)
                        self.kept_months.changed(change.event_id, change.slot)
                        self.feeds.changed(change.event_id, change.slot)
            except (RedisError, OSError) as exc:
                log.warning("not following the counters' changes (%r); answers are read afresh until then", exc)
            finally:
                self.kept.lost()
                self.kept_months.lost()
            await asyncio.sleep(retry_seconds)
