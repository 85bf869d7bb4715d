"""Open streams of a day's answer (``GET /availability/stream``): who watches which day, woken when a
slot of it is announced changed. Each stream reads the day through ``Availability.day``, so a
change costs one Redis read however many streams watch the day."""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID


class Watch:
    """One open stream's interest: an event, and the slots of its day (None until the day is read,
    or when it was not kept: then any change of the event wakes it)."""

    def __init__(self, event_id: UUID) -> None:
        self.event_id = event_id
        self.slots: frozenset[str] | None = None
        self.woken = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        """True when woken within ``timeout`` (and ready to be woken again)."""
        try:
            await asyncio.wait_for(self.woken.wait(), timeout)
        except TimeoutError:
            return False
        self.woken.clear()
        return True


class Watchers:
    def __init__(self) -> None:
        self._by_event: dict[UUID, set[Watch]] = {}
        self.closing = False  # the process is stopping: every stream ends

    def __len__(self) -> int:
        return sum(len(watches) for watches in self._by_event.values())

    @contextmanager
    def watching(self, event_id: UUID) -> Iterator[Watch]:
        watch = Watch(event_id)
        self._by_event.setdefault(event_id, set()).add(watch)
        try:
            yield watch
        finally:
            watches = self._by_event[event_id]
            watches.discard(watch)
            if not watches:
                del self._by_event[event_id]

    def changed(self, event_id: UUID, slot: str | None) -> None:
        """A slot of the event (None: anything of it) was announced changed."""
        for watch in self._by_event.get(event_id, ()):
            if slot is None or watch.slots is None or slot in watch.slots:
                watch.woken.set()

    def wake_all(self) -> None:
        """Announcements may have been missed (or the process stops): every stream looks again."""
        for watches in self._by_event.values():
            for watch in watches:
                watch.woken.set()

    def close(self) -> None:
        self.closing = True
        self.wake_all()
