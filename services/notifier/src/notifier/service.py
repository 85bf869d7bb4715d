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

from common.events import BookingEvent
from notifier.adapters.db import Claim, SentMail
from notifier.adapters.mail import compose
from notifier.adapters.smtp import SmtpMailer
from notifier.domain import notices_for

log = logging.getLogger(__name__)


class ClaimedElsewhere(Exception):
    """Another notifier is sending this mail right now; look again later."""


class Notifier:
    def __init__(self, sent_mail: SentMail, mailer: SmtpMailer, sender: str) -> None:
        self._sent_mail = sent_mail
        self._mailer = mailer
        self._sender = sender

    async def handle(self, event: BookingEvent) -> None:
        booking = event.data
        for notice in notices_for(event):
            recipient = notice.reader.email
            claim = await self._sent_mail.claim(event.event_id, recipient)
            if claim is Claim.SENT:
                log.info("mail for %s to %s was sent already", event.event_id, recipient)
                continue
            if claim is Claim.ELSEWHERE:
                raise ClaimedElsewhere(f"{event.event_id} to {recipient}")
            message_id = f"<{event.event_id}.{hashlib.sha256(recipient.encode()).hexdigest()[:16]}@appointments>"
            try:
                await self._mailer.send(compose(notice, event.sequence, self._sender, message_id, event.correlation_id))
            except BaseException:
                await self._sent_mail.unclaim(event.event_id, recipient)  # so the retry can claim it at once
                raise
            await self._sent_mail.mark_sent(event.event_id, recipient)
            log.info("sent %s for %s to %s", event.routing_key, booking.id, recipient)
