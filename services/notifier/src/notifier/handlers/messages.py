"""Booking events in, mails out: at most one mail per (event, recipient)."""

import hashlib
import logging

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker

from common.contracts import BookingData
from common.envelope import IntegrationEvent
from notifier.adapters.db import SentMailRow
from notifier.adapters.smtp import SmtpMailer
from notifier.domain import mails_for

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, sessions: async_sessionmaker, mailer: SmtpMailer) -> None:
        self._sessions = sessions
        self._mailer = mailer

    async def handle(self, event: IntegrationEvent) -> None:
        booking = BookingData.model_validate(event.data)
        for mail in mails_for(event.type, booking):
            async with self._sessions() as session:
                sent = await session.scalar(
                    select(SentMailRow).where(SentMailRow.event_id == event.event_id, SentMailRow.recipient == mail.to)
                )
            if sent is not None:
                log.info("mail for %s to %s was sent already", event.event_id, mail.to)
                continue
            message_id = f"<{event.event_id}.{hashlib.sha256(mail.to.encode()).hexdigest()[:16]}@appointments>"
            await self._mailer.send(mail, message_id, event.correlation_id)
            async with self._sessions.begin() as session:
                await session.execute(
                    insert(SentMailRow).values(event_id=event.event_id, recipient=mail.to).on_conflict_do_nothing()
                )
            log.info("sent %s for %s to %s", event.type, booking.id, mail.to)
