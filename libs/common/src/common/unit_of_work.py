"""A unit of work per use case: one transaction, the events the use case publishes written to the
outbox inside it, the relay woken once after the commit, and what must happen either way run in
one place (cosmicpython's ``AbstractUnitOfWork``; one instance per use case, as a request's
session is never shared between tasks).

    async with self._uow() as uow:
        row = await uow.session.get(...)
        uow.publish(ShiftUpdated.of(row.id, row.sequence, data))
        uow.after_commit(lambda: ...)    # e.g. give a unit back once the cancel is durable
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common.events import Event
from common.outbox import Outbox

log = logging.getLogger(__name__)

Action = Callable[[], Awaitable[None]]


class UnitOfWork:
    def __init__(self, sessions: async_sessionmaker, outbox: Outbox, wake_relay: Callable[[], None]) -> None:
        self._sessions = sessions
        self._outbox = outbox
        self._wake_relay = wake_relay
        self.events: list[Event] = []  # published by this use case, in order
        self._after_commit: list[Action] = []
        self._on_rollback: list[Action] = []

    session: AsyncSession

    def publish(self, event: Event) -> None:
        """Written to the outbox in this transaction: it goes out if, and only if, the work commits."""
        self.events.append(event)

    def after_commit(self, action: Action) -> None:
        """Run once the work is durable; a failure there is logged, never the caller's."""
        self._after_commit.append(action)

    def on_rollback(self, action: Action) -> None:
        """Run when the work does not commit: a compensation (e.g. a unit taken in Redis given back)."""
        self._on_rollback.append(action)

    async def __aenter__(self) -> Self:
        self.session = self._sessions()
        await self.session.begin()
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        committed = False
        try:
            if exc_type is None:
                if self.events:
                    await self._outbox.write(self.session, self.events)
                await self.session.commit()
                committed = True
        finally:
            await self.session.close()  # rolls back whatever did not commit
            if not committed:
                await self._run(self._on_rollback, "compensation")
        if not committed:
            return  # the caller's exception goes on
        if self.events:
            self._wake_relay()
        await self._run(self._after_commit, "after-commit action")

    @staticmethod
    async def _run(actions: list[Action], what: str) -> None:
        for action in actions:
            try:
                await action()
            except Exception:
                log.exception("%s %r failed", what, action)


def unit_of_work(sessions: async_sessionmaker, outbox: Outbox, wake_relay: Callable[[], None]) -> Callable[[], UnitOfWork]:
    """A service's units of work: a fresh one per use case."""
    return lambda: UnitOfWork(sessions, outbox, wake_relay)
