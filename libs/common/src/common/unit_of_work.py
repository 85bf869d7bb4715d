"""A unit of work per use case: one transaction, the events the use case publishes written to the
outbox inside it, the relay woken once after the commit, and what must happen either way run in
one place (cosmicpython's ``AbstractUnitOfWork``; one instance per use case, as a connection or a
session is never shared between tasks).

    async with self._uow() as uow:
        ...                                    # the service's data access, on uow's connection
        uow.publish(ShiftUpdated.of(...))      # into the outbox, in this transaction
        uow.on_rollback(give_the_unit_back)    # a compensation, if this does not commit
        uow.after_commit(release_the_unit)     # once it is durable

Two drivers, one per service: SQLAlchemy sessions (``SessionUnitOfWork``) or plain asyncpg
(``ConnectionUnitOfWork``, for the booking service, whose hot path is measured on it).
"""

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Self

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common.events import Event
from common.outbox import OUTBOX_COLUMNS, Outbox, outbox_values

log = logging.getLogger(__name__)

Action = Callable[[], Awaitable[None]]

# Errors that leave a COMMIT's outcome unknown: the request may or may not have reached PostgreSQL.
CONNECTION_LOST = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, ConnectionError, OSError, TimeoutError)


class CommitLost(Exception):
    """COMMIT was sent and its answer lost. ``committed``: False when the work is known not to have
    committed (its compensations ran), None when that could not be found out (none ran)."""

    def __init__(self, committed: bool | None) -> None:
        super().__init__("the answer to COMMIT was lost")
        self.committed = committed


class UnitOfWork:
    """What every unit of work does around its driver's BEGIN, COMMIT and ROLLBACK."""

    def __init__(self, wake_relay: Callable[[], None]) -> None:
        self._wake_relay = wake_relay
        self.events: list[Event] = []  # to write into the outbox at commit, in order
        self._written = False  # some event was written into the outbox already (by the caller's own statement)
        self._after_commit: list[Action] = []
        self._on_rollback: list[Action] = []
        self._commit_check: Callable[[], Awaitable[bool | None]] | None = None

    def publish(self, event: Event) -> None:
        """Written to the outbox in this transaction: it goes out if, and only if, the work commits."""
        self.events.append(event)

    def published_by_statement(self) -> None:
        """The caller wrote an outbox row in one of its own statements (one round trip fewer)."""
        self._written = True

    def after_commit(self, action: Action) -> None:
        """Run once the work is durable; a failure there is logged, never the caller's."""
        self._after_commit.append(action)

    def on_rollback(self, action: Action) -> None:
        """Run when the work does not commit: a compensation (e.g. a unit taken in Redis given back)."""
        self._on_rollback.append(action)

    def if_commit_lost(self, check: Callable[[], Awaitable[bool | None]]) -> None:
        """How to tell, from a fresh connection, whether this work committed when COMMIT's answer
        is lost (True, False, or None: cannot tell). Without it a lost answer is an error."""
        self._commit_check = check

    async def __aenter__(self) -> Self:
        await self._begin()
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            await self._end(rolled_back=True)
            return  # the caller's exception goes on
        try:
            if self.events:
                await self._write(self.events)
        except BaseException:
            await self._end(rolled_back=True)
            raise
        try:
            await self._commit()
        except CONNECTION_LOST as lost:
            committed = await self._commit_check() if self._commit_check else None
            if not committed:
                await self._end(rolled_back=committed is False, broken=True)
                raise CommitLost(committed) from lost
            log.warning("COMMIT's answer was lost, but the work committed (%r)", lost)
        except BaseException:
            await self._end(rolled_back=True, broken=True)  # refused: nothing was written
            raise
        await self._release()
        if self.events or self._written:
            self._wake_relay()
        await self._run(self._after_commit, "after-commit action")

    async def _end(self, rolled_back: bool, broken: bool = False) -> None:
        if not broken:
            with contextlib.suppress(Exception):
                await self._rollback()
        await self._release()
        if rolled_back:
            await self._run(self._on_rollback, "compensation")

    @staticmethod
    async def _run(actions: list[Action], what: str) -> None:
        for action in actions:
            try:
                await action()
            except Exception:
                log.exception("%s %r failed", what, action)

    # -- the driver ---------------------------------------------------------------------------

    async def _begin(self) -> None:
        raise NotImplementedError

    async def _write(self, events: list[Event]) -> None:
        raise NotImplementedError

    async def _commit(self) -> None:
        raise NotImplementedError

    async def _rollback(self) -> None:
        raise NotImplementedError

    async def _release(self) -> None:
        raise NotImplementedError


class SessionUnitOfWork(UnitOfWork):
    """On a SQLAlchemy ``AsyncSession`` (``uow.session``)."""

    session: AsyncSession

    def __init__(self, sessions: async_sessionmaker, outbox: Outbox, wake_relay: Callable[[], None]) -> None:
        super().__init__(wake_relay)
        self._sessions = sessions
        self._outbox = outbox

    async def _begin(self) -> None:
        self.session = self._sessions()
        await self.session.begin()

    async def _write(self, events: list[Event]) -> None:
        await self._outbox.write(self.session, events)

    async def _commit(self) -> None:
        await self.session.commit()

    async def _rollback(self) -> None:
        await self.session.rollback()

    async def _release(self) -> None:
        await self.session.close()


class ConnectionUnitOfWork(UnitOfWork):
    """On a plain asyncpg connection from a pool (``uow.connection``). ``begin``: the statement that
    opens the transaction, sent as one simple query (e.g. BEGIN with a lock, one round trip)."""

    connection: asyncpg.Connection

    def __init__(self, pool: asyncpg.Pool, wake_relay: Callable[[], None], begin: str = "BEGIN") -> None:
        super().__init__(wake_relay)
        self._pool = pool
        self._begin_statement = begin

    async def _begin(self) -> None:
        self.connection = await self._pool.acquire()
        try:
            await self.connection.execute(self._begin_statement)
        except BaseException:
            await self._release()
            raise

    async def _write(self, events: list[Event]) -> None:
        await self.connection.executemany(
            f"INSERT INTO outbox ({', '.join(OUTBOX_COLUMNS)}) VALUES ($1, $2, $3, $4)", [outbox_values(e) for e in events]
        )

    async def _commit(self) -> None:
        await self.connection.execute("COMMIT")

    async def _rollback(self) -> None:
        await self.connection.execute("ROLLBACK")

    async def _release(self) -> None:
        await self._pool.release(self.connection)


def unit_of_work(sessions: async_sessionmaker, outbox: Outbox, wake_relay: Callable[[], None]) -> Callable[[], UnitOfWork]:
    """A service's units of work on SQLAlchemy: a fresh one per use case."""
    return lambda: SessionUnitOfWork(sessions, outbox, wake_relay)
