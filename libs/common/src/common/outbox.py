"""Transactional outbox: an event row is written in the business transaction; a relay publishes it.

The relay keeps many publishes in flight, marks a row published only after the broker confirmed
it, and with the broker down leaves rows for the next pass, so nothing is lost and nothing waits
on RabbitMQ inside a request.
"""

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table, Text, Uuid, func, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from common.envelope import IntegrationEvent
from common.events import Event
from common.messaging import Broker

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
        Index("outbox_unpublished", "created_at", postgresql_where=text("published_at IS NULL")),
    )


class Outbox:
    """Writes integration events into the caller's transaction (a unit of work's, or the booking
    hot path's one statement, which takes its values from ``row``)."""

    def __init__(self, table: Table) -> None:
        self.table = table

    @staticmethod
    def row(event: Event) -> dict[str, Any]:
        return {"event_id": event.event_id, "exchange": event.exchange, "envelope": event.envelope().model_dump(mode="json")}

    async def write(self, session: AsyncSession, events: list[Event]) -> None:
        # Values as parameters, not in the statement: the compiled INSERT is cached once.
        await session.execute(self.table.insert(), [self.row(event) for event in events])


class OutboxRelay:
    def __init__(
        self, engine: AsyncEngine, table: Table, broker: Broker, poll_seconds: float = 0.5, batch_size: int = 200
    ) -> None:
        self._engine = engine
        self._table = table
        self._broker = broker
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._wake = asyncio.Event()

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

    async def publish_pending(self) -> tuple[int, int]:
        t = self._table
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(t.c.event_id, t.c.exchange, t.c.envelope)
                    .where(t.c.published_at.is_(None))
                    .order_by(t.c.created_at)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0, 0
            results = await asyncio.gather(
                *(self._broker.publish(row.exchange, IntegrationEvent.model_validate(row.envelope)) for row in rows),
                return_exceptions=True,
            )
            outcomes = list(zip(rows, results, strict=True))
            done = [row.event_id for row, result in outcomes if not isinstance(result, BaseException)]
            failed = [(row.event_id, result) for row, result in outcomes if isinstance(result, BaseException)]
            if done:
                await conn.execute(update(t).where(t.c.event_id.in_(done)).values(published_at=datetime.now(UTC)))
            for event_id, error in failed:
                await conn.execute(
                    update(t).where(t.c.event_id == event_id).values(attempts=t.c.attempts + 1, last_error=repr(error)[:1000])
                )
            if failed:
                log.warning("outbox: %d published, %d failed (first: %r)", len(done), len(failed), failed[0][1])
            return len(done), len(failed)
