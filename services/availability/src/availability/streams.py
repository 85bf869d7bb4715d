"""Open streams of a day's answer (``GET /availability/stream``). The streams of one day (and zone)
share a ``DayFeed``: one task that, when a slot of the day is announced changed, reads the day once
and sends the answer to each stream in turn; a stream itself does nothing until it ends. So a
change costs one read and one write per stream, however many watch the day, and no task wakes
per stream (measured: 2,000 woken tasks cost more than the writes)."""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from uuid import UUID

from availability.domain import DayKey
from common.web import Rendered

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamSettings:
    min_interval: float  # seconds between two answers on one stream, at least
    recheck: float  # a feed reads its day at least this often, announced or not; a client gone is noticed as soon
    heartbeat: float  # a quiet stream says it is alive this often


@dataclass(eq=False)
class Listener:
    """One open stream: how to send it an answer (None: only that it is alive; False back when the
    client is gone or too far behind to be sent more), and the answer it holds."""

    send: Callable[[Rendered | None], Awaitable[bool]]
    gone: Callable[[], bool]
    last_sent: str | None
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class DayFeed:
    def __init__(
        self,
        key: DayKey,
        read: Callable[[], Awaitable[Rendered]],
        slots_of: Callable[[], frozenset[str] | None],
        settings: StreamSettings,
        clock: Callable[[], float],
    ) -> None:
        self.key = key
        self.listeners: set[Listener] = set()
        self.slots: frozenset[str] | None = None  # None until read, or when not kept: any change of the event wakes it
        self.woken = asyncio.Event()
        self._read, self._slots_of, self._settings, self._clock = read, slots_of, settings, clock

    def end(self, listener: Listener) -> None:
        self.listeners.discard(listener)
        listener.ended.set()

    async def run(self) -> None:
        """Until nobody listens: each change (or re-check) read once, sent to whoever lacks it."""
        settings = self._settings
        sent_at, quiet_since = -settings.min_interval, self._clock()
        try:
            while self.listeners:
                for listener in [listener for listener in self.listeners if listener.gone()]:
                    self.end(listener)
                try:
                    async with asyncio.timeout(settings.recheck):
                        await self.woken.wait()
                except TimeoutError:
                    pass
                self.woken.clear()
                if (wait := sent_at + settings.min_interval - self._clock()) > 0:
                    await asyncio.sleep(wait)  # changes in a burst go out as one
                answer = await self._read()
                self.slots = self._slots_of()
                behind = [listener for listener in self.listeners if listener.last_sent != answer.etag]
                if behind:
                    sent_at = quiet_since = self._clock()
                    await self._send(behind, answer)
                elif self._clock() - quiet_since >= settings.heartbeat:
                    quiet_since = self._clock()
                    await self._send(list(self.listeners), None)
        finally:  # the process stops, or the day could not be read: every stream ends (its client reconnects)
            for listener in list(self.listeners):
                self.end(listener)

    async def _send(self, listeners: list[Listener], answer: Rendered | None) -> None:
        for listener in listeners:
            if await listener.send(answer):
                if answer is not None:
                    listener.last_sent = answer.etag
            else:
                self.end(listener)


class Feeds:
    """Every open day feed, by event: an announced change wakes the feeds that show its slot."""

    def __init__(self) -> None:
        self._by_event: dict[UUID, dict[DayKey, DayFeed]] = {}
        self._running: set[asyncio.Task] = set()

    def __len__(self) -> int:
        """Open streams."""
        return sum(len(feed.listeners) for feeds in self._by_event.values() for feed in feeds.values())

    @contextmanager
    def listening(self, listener: Listener, key: DayKey, make_feed: Callable[[], DayFeed]) -> Iterator[None]:
        """``listener`` on the day's feed (started if it is the first) while the block runs."""
        feeds = self._by_event.setdefault(key[0], {})
        if (feed := feeds.get(key)) is None:
            feed = feeds[key] = make_feed()
            task = asyncio.create_task(self._run(feed), name=f"day-feed-{key[1]}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        feed.listeners.add(listener)
        try:
            yield
        finally:
            feed.end(listener)

    async def _run(self, feed: DayFeed) -> None:
        try:
            await feed.run()
        except Exception as exc:  # noqa: BLE001 (its streams ended; their clients reconnect and are answered afresh)
            log.warning("the streams of %s ended: the day could not be read (%r)", feed.key[1], exc)
        finally:
            feeds = self._by_event.get(feed.key[0], {})
            if feeds.get(feed.key) is feed:
                del feeds[feed.key]
                if not feeds:
                    del self._by_event[feed.key[0]]

    def changed(self, event_id: UUID, slot: str | None) -> None:
        """A slot of the event (None: anything of it) was announced changed."""
        for feed in self._by_event.get(event_id, {}).values():
            if slot is None or feed.slots is None or slot in feed.slots:
                feed.woken.set()

    def wake_all(self) -> None:
        """Announcements may have been missed: every feed reads its day again."""
        for feeds in self._by_event.values():
            for feed in feeds.values():
                feed.woken.set()

    async def close(self) -> None:
        """The process stops: every stream ends."""
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
