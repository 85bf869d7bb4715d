"""The notifier's use case: a booking event in, its mails out, exactly one mail per (event,
recipient), as far as SMTP allows.

Before sending, a notifier claims the (event, recipient) row in its own committed transaction;
after SMTP accepted the mail it marks the row sent. A redelivered message finds the row sent and
sends nothing; a second instance finds a fresh claim and retries later. A claim whose holder died
(older than the lease) may be taken over: the only way to a second mail is a crash between SMTP
accepting the mail and the 'sent' commit, a window of one database round trip.
"""

import hashlib
import logging
import uuid
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker

from common.events import BookingEvent
from notifier.adapters.db import SentMailRow
from notifier.adapters.mail import compose
from notifier.adapters.smtp import SmtpMailer
from notifier.domain import notices_for

log = logging.getLogger(__name__)


class ClaimedElsewhere(Exception):
    """Another notifier is sending this mail right now; look again later."""


class Notifier:
    def __init__(self, sessions: async_sessionmaker, mailer: SmtpMailer, sender: str, lease_seconds: float) -> None:
        self._sessions = sessions
        self._mailer = mailer
        self._sender = sender
        self._lease = timedelta(seconds=lease_seconds)
        self.instance = uuid.uuid4().hex

    async def handle(self, event: BookingEvent) -> None:
        booking = event.data
        for notice in notices_for(event):
            recipient = notice.reader.email
            if not await self._claim(event, recipient):
                continue
            message_id = f"<{event.event_id}.{hashlib.sha256(recipient.encode()).hexdigest()[:16]}@appointments>"
            try:
                await self._mailer.send(compose(notice, event.sequence, self._sender, message_id, event.correlation_id))
            except BaseException:
                await self._unclaim(event, recipient)  # so the retry can claim it at once
                raise
            await self._mark_sent(event, recipient)
            log.info("sent %s for %s to %s", event.routing_key, booking.id, recipient)

    async def _claim(self, event: BookingEvent, recipient: str) -> bool:
        """True: ours to send. False: sent already. Raises ClaimedElsewhere for a fresh claim of another."""
        row = SentMailRow.__table__
        claim = insert(row).values(event_id=event.event_id, recipient=recipient, status="sending", claimed_by=self.instance)
        claim = claim.on_conflict_do_update(
            index_elements=[row.c.event_id, row.c.recipient],
            set_={"claimed_by": self.instance, "claimed_at": func.now()},
            where=(row.c.status == "sending") & (row.c.claimed_at < func.now() - self._lease),
        ).returning(row.c.claimed_by)
        async with self._sessions.begin() as session:
            if (await session.execute(claim)).first() is not None:
                return True
            status = await session.scalar(
                select(row.c.status).where(row.c.event_id == event.event_id, row.c.recipient == recipient)
            )
        if status == "sent":
            log.info("mail for %s to %s was sent already", event.event_id, recipient)
            return False
        raise ClaimedElsewhere(f"{event.event_id} to {recipient}")

    async def _mark_sent(self, event: BookingEvent, recipient: str) -> None:
        row = SentMailRow.__table__
        async with self._sessions.begin() as session:
            await session.execute(
                update(row)
                .where(row.c.event_id == event.event_id, row.c.recipient == recipient)
                .values(status="sent", sent_at=func.now())
            )

    async def _unclaim(self, event: BookingEvent, recipient: str) -> None:
        row = SentMailRow.__table__
        async with self._sessions.begin() as session:
            await session.execute(
                delete(row).where(
                    row.c.event_id == event.event_id,
                    row.c.recipient == recipient,
                    row.c.status == "sending",
                    row.c.claimed_by == self.instance,
                )
            )
