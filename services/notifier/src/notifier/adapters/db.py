"""The notifier's tables, what it sent (``SentMail``) and the reminders it is to send (``Reminders``),
and its one way to each."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from uuid import UUID

import asyncpg
from sqlalchemy import DateTime, Index, Integer, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.contracts import BookingData, BookingStatus

log = logging.getLogger(__name__)


class Base(DeclarativeBase):
    pass


class SentMailRow(Base):
    """One row per (integration event, recipient): claimed before the mail is sent, marked after.
    Whoever holds a fresh claim is the only one sending that mail."""

    __tablename__ = "sent_mail"

    event_id: Mapped[UUID] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(320), primary_key=True)
    status: Mapped[str] = mapped_column(String(10), server_default="sent")  # sending | sent | refused
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ReminderRow(Base):
    """Per booking, its newest state as the booking events said (``sequence``), when its reminder
    is due (null: none, e.g. cancelled), and the due time a reminder was sent for."""

    __tablename__ = "reminders"
    __table_args__ = (Index("reminders_due", "due_at", postgresql_where=text("due_at IS NOT NULL")),)

    booking_id: Mapped[UUID] = mapped_column(primary_key=True)
    sequence: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_for: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    booking: Mapped[dict] = mapped_column(JSONB)


class Claim(Enum):
    OURS = "ours"  # ours to send
    SENT = "sent"  # sent already: nothing to do
    ELSEWHERE = "elsewhere"  # another notifier holds a fresh claim


# Each a single statement, committed by itself: one round trip (a claim that conflicts, two).
CLAIM = """
INSERT INTO sent_mail (event_id, recipient, status, claimed_by) VALUES ($1, $2, 'sending', $3)
ON CONFLICT (event_id, recipient) DO UPDATE SET claimed_by = EXCLUDED.claimed_by, claimed_at = now()
WHERE sent_mail.status = 'sending' AND sent_mail.claimed_at < now() - $4::interval
RETURNING claimed_by
"""
STATUS = "SELECT status FROM sent_mail WHERE event_id = $1 AND recipient = $2"
# Only the claim's holder settles it: a notifier whose claim was taken over (it was slow past the
# lease) changes nothing of the one that took it.
SETTLE = "UPDATE sent_mail SET status = $4, sent_at = now() WHERE event_id = $1 AND recipient = $2 AND claimed_by = $3"
RENEW = (
    "UPDATE sent_mail SET claimed_at = now() WHERE event_id = $1 AND recipient = $2 AND claimed_by = $3 AND status = 'sending'"
)
UNCLAIM = "DELETE FROM sent_mail WHERE event_id = $1 AND recipient = $2 AND status = 'sending' AND claimed_by = $3"


class SentMail:
    """The notifier's record of what it sent, one row per (event, recipient): its one way to its
    table, on plain asyncpg (through SQLAlchemy, the claim and the mark cost a fifth of a mail's
    CPU; profiled). The model above only declares the table, for the migrations."""

    def __init__(self, pool: asyncpg.Pool, instance: str, lease: timedelta) -> None:
        self._pool = pool
        self._me = instance
        self._lease = lease

    async def claim(self, event_id: UUID, recipient: str) -> Claim:
        if await self._pool.fetchval(CLAIM, event_id, recipient, self._me, self._lease) is not None:
            return Claim.OURS
        status = await self._pool.fetchval(STATUS, event_id, recipient)
        return Claim.SENT if status in ("sent", "refused") else Claim.ELSEWHERE

    @contextlib.asynccontextmanager
    async def renewed(self, event_id: UUID, recipient: str) -> AsyncIterator[None]:
        """Keep our claim fresh while the mail is being handed over: a slow SMTP server (the answer
        to the data may take minutes) is not a dead notifier, and its mail not another's to send."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(self._lease.total_seconds() / 3)
                try:
                    await self._pool.execute(RENEW, event_id, recipient, self._me)
                except Exception as exc:  # the database away for a moment: the next renewal may reach it
                    log.warning("could not renew the claim on %s to %s: %r", event_id, recipient, exc)

        renewing = asyncio.create_task(renew())
        try:
            yield
        finally:
            renewing.cancel()

    async def mark_sent(self, event_id: UUID, recipient: str) -> None:
        await self._pool.execute(SETTLE, event_id, recipient, self._me, "sent")

    async def mark_refused(self, event_id: UUID, recipient: str) -> None:
        """The SMTP server said no for good to this address (5xx): nothing more to send to it."""
        await self._pool.execute(SETTLE, event_id, recipient, self._me, "refused")

    async def unclaim(self, event_id: UUID, recipient: str) -> None:
        """Give up our claim (the send failed), so a retry can claim it at once."""
        await self._pool.execute(UNCLAIM, event_id, recipient, self._me)


# The newest state of a booking wins; an older or repeated event changes nothing.
KEEP_REMINDER = """
INSERT INTO reminders (booking_id, sequence, due_at, booking) VALUES ($1, $2, $3, $4)
ON CONFLICT (booking_id) DO UPDATE SET sequence = EXCLUDED.sequence, due_at = EXCLUDED.due_at, booking = EXCLUDED.booking
WHERE reminders.sequence < EXCLUDED.sequence
"""
DUE_REMINDERS = """
SELECT booking, sequence, due_at FROM reminders
WHERE due_at IS NOT NULL AND due_at <= $1 AND sent_for IS DISTINCT FROM due_at ORDER BY due_at LIMIT $2
"""
REMINDED = "UPDATE reminders SET sent_for = $2 WHERE booking_id = $1 AND due_at = $2"


@dataclass(frozen=True)
class DueReminder:
    booking: BookingData
    sequence: int  # the booking's, for the invite: the same as its last mail's, so calendars change nothing
    due_at: datetime


class Reminders:
    """When each booking's reminder is due, kept from the booking events (newest sequence wins)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def keep(self, booking: BookingData, sequence: int) -> None:
        due = booking.reminder_at if booking.status is BookingStatus.CONFIRMED else None
        await self._pool.execute(KEEP_REMINDER, booking.id, sequence, due, booking.model_dump(mode="json"))

    async def due(self, now: datetime, limit: int = 100) -> list[DueReminder]:
        rows = await self._pool.fetch(DUE_REMINDERS, now, limit)
        return [DueReminder(BookingData.model_validate(r["booking"]), r["sequence"], r["due_at"]) for r in rows]

    async def mark_sent(self, booking_id: UUID, due_at: datetime) -> None:
        """Sent (or skipped) for ``due_at``: a reschedule since, with another due time, is reminded anew."""
        await self._pool.execute(REMINDED, booking_id, due_at)
