"""Transactional outbox: an event row is written in the business transaction; a relay publishes it.

The relay keeps many publishes in flight, marks a row published only after the broker confirmed
it, and with the broker down leaves rows for the next pass, so nothing is lost and nothing waits
on RabbitMQ inside a request.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import asyncpg
from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table, Text, Uuid, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from common.envelope import IntegrationEvent
from common.events import Event
from common.messaging import Broker
from common.metrics import OUTBOX_OLDEST_SECONDS, OUTBOX_PENDING, OUTBOX_PUBLISH_FAILURES, OUTBOX_PUBLISHED, REFRESH_SECONDS
from common.tracing import continued, current_context

log = logging.getLogger(__name__)


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("event_id", Uuid, primary_key=True),
        Column("exchange", String(100), nullable=False),
        Column("envelope", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("last_error", Text),
        Column("trace_context", JSONB),  # the writing request's trace (W3C headers), continued by the relay
        Index("outbox_unpublished", "created_at", postgresql_where=text("published_at IS NULL")),
    )


OUTBOX_COLUMNS = ("event_id", "exchange", "envelope", "trace_context")


def outbox_values(event: Event) -> tuple[UUID, str, dict[str, Any], dict[str, str] | None]:
    """An event's outbox row, in ``OUTBOX_COLUMNS`` order, whichever driver writes it."""
    return event.event_id, event.exchange, event.envelope().model_dump(mode="json"), current_context()


class Outbox:
    """Writes integration events into the caller's SQLAlchemy transaction (a unit of work's)."""

    def __init__(self, table: Table) -> None:
        self.table = table

    async def write(self, session: AsyncSession, events: list[Event]) -> None:
        # Values as parameters, not in the statement: the compiled INSERT is cached once.
        rows = [dict(zip(OUTBOX_COLUMNS, outbox_values(event), strict=True)) for event in events]
        await session.execute(self.table.insert(), rows)


@dataclass(frozen=True)
class PendingRow:
    event_id: UUID
    exchange: str
    envelope: dict
    trace_context: dict | None


class Claimed(Protocol):
    """Unpublished rows, locked for this relay until the end of the claim."""

    rows: list[PendingRow]

    async def published(self, event_ids: list[UUID]) -> None: ...

    async def failed(self, event_id: UUID, error: str) -> None: ...


class OutboxRows(Protocol):
    def claim(self, limit: int) -> contextlib.AbstractAsyncContextManager[Claimed]: ...

    async def backlog(self) -> tuple[int, float]: ...


_PENDING = (
    "SELECT event_id, exchange, envelope, trace_context FROM outbox WHERE published_at IS NULL"
    " ORDER BY created_at LIMIT {limit} FOR UPDATE SKIP LOCKED"
)
_PUBLISHED = "UPDATE outbox SET published_at = now() WHERE event_id = ANY({ids})"
# How many rows wait, and the age of the oldest (the partial index keeps this to the waiting rows).
_BACKLOG = (
    "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 FROM outbox WHERE published_at IS NULL"
)
_FAILED = "UPDATE outbox SET attempts = attempts + 1, last_error = {error} WHERE event_id = {event_id}"


@dataclass
class _SessionClaim:
    connection: AsyncConnection
    rows: list[PendingRow]

    async def published(self, event_ids: list[UUID]) -> None:
        await self.connection.execute(text(_PUBLISHED.format(ids=":ids")), {"ids": event_ids})

    async def failed(self, event_id: UUID, error: str) -> None:
        await self.connection.execute(text(_FAILED.format(error=":error", event_id=":id")), {"error": error, "id": event_id})


class SessionOutboxRows:
    """The outbox of a service on SQLAlchemy."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @contextlib.asynccontextmanager
    async def claim(self, limit: int) -> AsyncIterator[Claimed]:
        async with self._engine.begin() as connection:
            found = await connection.execute(text(_PENDING.format(limit=int(limit))))
            yield _SessionClaim(connection, [PendingRow(*row) for row in found.all()])

    async def backlog(self) -> tuple[int, float]:
        async with self._engine.connect() as connection:
            count, age = (await connection.execute(text(_BACKLOG))).one()
            return count, age


@dataclass
class _ConnectionClaim:
    connection: asyncpg.Connection
    rows: list[PendingRow]

    async def published(self, event_ids: list[UUID]) -> None:
        await self.connection.execute(_PUBLISHED.format(ids="$1::uuid[]"), event_ids)

    async def failed(self, event_id: UUID, error: str) -> None:
        await self.connection.execute(_FAILED.format(error="$1", event_id="$2"), error, event_id)


class ConnectionOutboxRows:
    """The outbox of a service on plain asyncpg (the booking service)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @contextlib.asynccontextmanager
    async def claim(self, limit: int) -> AsyncIterator[Claimed]:
        async with self._pool.acquire() as connection, connection.transaction():
            found = await connection.fetch(_PENDING.format(limit=int(limit)))
            yield _ConnectionClaim(connection, [PendingRow(*row) for row in found])

    async def backlog(self) -> tuple[int, float]:
        count, age = await self._pool.fetchrow(_BACKLOG)
        return count, age


class OutboxRelay:
    def __init__(self, outbox: OutboxRows, broker: Broker, poll_seconds: float = 0.5, batch_size: int = 200) -> None:
        self._outbox = outbox
        self._broker = broker
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._wake = asyncio.Event()
        broker.on_reconnect(self.wake)  # rows that failed during an outage go out as soon as it ends

    def wake(self) -> None:
        """Called after a commit that wrote events, so they go out now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        backoff = self._poll_seconds
        while True:
            self._wake.clear()
            try:
                published, failed = await self.publish_pending()
                backoff = self._poll_seconds if not failed else min(backoff * 2, 10.0)
                if published == self._batch_size and not failed:
                    continue
                await asyncio.wait_for(self._wake.wait(), backoff if failed else self._poll_seconds)
            except TimeoutError:
                pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay pass failed")
                await asyncio.sleep(backoff)

    async def flush(self, timeout: float) -> bool:
        """Publish what is pending now, for at most ``timeout`` (a stopping service: its last
        commits' events go out before it does). False when some are left: they wait for the next
        relay, of another instance or after a restart."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    published, failed = await self.publish_pending()
                    if failed:
                        raise ConnectionError(f"{failed} events not published")
                    if published < self._batch_size:
                        return True
        except Exception as exc:  # the broker away, or out of time: nothing is lost, only later
            log.warning("outbox not flushed before stopping (%r); the rest goes out with the next relay", exc)
            return False

    async def _publish(self, row: PendingRow) -> None:
        with continued(row.trace_context):  # the trace of the request that wrote the row
            await self._broker.publish(row.exchange, IntegrationEvent.model_validate(row.envelope))

    async def measure_backlog(self) -> None:
        """The outbox's backlog into its gauges, every few seconds: what an operator watches to see
        the relay stop draining (the broker away, a relay stuck), measured apart from the relay."""
        while True:
            try:
                count, age = await self._outbox.backlog()
                OUTBOX_PENDING.set(count)
                OUTBOX_OLDEST_SECONDS.set(age)
            except Exception as exc:  # the database away: the gauges keep their last figures
                log.debug("outbox backlog not measured: %r", exc)
            await asyncio.sleep(REFRESH_SECONDS)

    async def publish_pending(self) -> tuple[int, int]:
        async with self._outbox.claim(self._batch_size) as claimed:
            if not claimed.rows:
                return 0, 0
            results = await asyncio.gather(*(self._publish(row) for row in claimed.rows), return_exceptions=True)
            outcomes = list(zip(claimed.rows, results, strict=True))
            done = [row.event_id for row, result in outcomes if not isinstance(result, BaseException)]
            failed = [(row.event_id, result) for row, result in outcomes if isinstance(result, BaseException)]
            if done:
                await claimed.published(done)
            for event_id, error in failed:
                await claimed.failed(event_id, repr(error)[:1000])
            OUTBOX_PUBLISHED.inc(len(done))
            OUTBOX_PUBLISH_FAILURES.inc(len(failed))
            if failed:
                log.warning("outbox: %d published, %d failed (first: %r)", len(done), len(failed), failed[0][1])
            return len(done), len(failed)
