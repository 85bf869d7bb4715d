"""The notifier's use case: a booking event in, its mails out, exactly one mail per (event,
recipient), as far as SMTP allows.

Before sending, a notifier claims the (event, recipient) row in its own committed transaction;
after SMTP accepted the mail it marks the row sent. A redelivered message finds the row sent and
sends nothing; a second instance finds a fresh claim and retries later. The holder renews its claim
while the hand-over lasts; a claim not renewed for the lease belongs to a notifier that died and is
taken over. Two ways remain to a second mail, both where SMTP cannot tell: a crash between the
server's 250 and the 'sent' commit (a few milliseconds: README, "Mail, exactly once"), and an
answer to the data that never came (the server may have kept the mail: it is sent again).
"""

import asyncio
import logging

import aiosmtplib

from common.events import BookingEvent
from common.unavailable import is_unavailable
from notifier.adapters.db import Claim, SentMail
from notifier.adapters.mail import compose
from notifier.adapters.smtp import SmtpMailer
from notifier.domain import Letterhead, Notice, notices_for
from notifier.metrics import MAILS

log = logging.getLogger(__name__)


class MailNotSent(Exception):
    """The SMTP server did not take a mail (down, timing out, a temporary refusal)."""


class ClaimedElsewhere(Exception):
    """Another notifier is sending this mail right now; look again later."""


MARK_SENT_PATIENCE_SECONDS = 60.0


class Notifier:
    def __init__(self, sent_mail: SentMail, mailer: SmtpMailer, letterhead: Letterhead) -> None:
        self._sent_mail = sent_mail
        self._mailer = mailer
        self._letterhead = letterhead

    async def handle(self, event: BookingEvent) -> None:
        # Each mail's hand-over and its record are one step that nothing cancels halfway: a broker
        # connection closing cancels the handler, and a cancel between the SMTP server's 250 and
        # the "sent" mark would send the mail again.
        for notice in notices_for(event):
            await asyncio.shield(self._deliver(event, notice))

    async def _deliver(self, event: BookingEvent, notice: Notice) -> None:
        booking = event.data
        recipient = notice.reader.email
        claim = await self._sent_mail.claim(event.event_id, recipient)
        if claim is Claim.SENT:
            log.info("mail for %s to %s was sent already", event.event_id, recipient)
            MAILS.labels("duplicate").inc()
            return
        if claim is Claim.ELSEWHERE:
            raise ClaimedElsewhere(f"{event.event_id} to {recipient}")
        message_id = self._letterhead.message_id(event.event_id, recipient)
        mail = compose(notice, event.sequence, self._letterhead, message_id, event.correlation_id)
        try:
            async with self._sent_mail.renewed(event.event_id, recipient):
                await self._mailer.send(mail)
        except aiosmtplib.SMTPRecipientsRefused as refused:
            if any(r.code < 500 for r in refused.recipients):  # a 4xx: try again later
                await self._sent_mail.unclaim(event.event_id, recipient)
                MAILS.labels("retried").inc()
                raise
            # A 5xx: this address will never take it. The other readers still get theirs.
            log.warning("the SMTP server refused %s for %s for good: %s", recipient, event.event_id, refused)
            await self._sent_mail.mark_refused(event.event_id, recipient)
            MAILS.labels("refused").inc()
            return
        except aiosmtplib.SMTPException as exc:
            await self._sent_mail.unclaim(event.event_id, recipient)  # so the retry can claim it at once
            MAILS.labels("retried").inc()
            # Not one of our own servers: an SMTP server that keeps failing gets the retries
            # and then the parking of any failing message, where an operator sees it.
            raise MailNotSent(f"{recipient}: {exc!r}") from exc
        except BaseException:
            await self._sent_mail.unclaim(event.event_id, recipient)
            raise
        await self._record_sent(event.event_id, recipient)
        MAILS.labels("sent").inc()
        log.info("sent %s for %s to %s", event.routing_key, booking.id, recipient)

    async def _record_sent(self, event_id, recipient: str) -> None:
        """The mail went: record it, waiting out a database that is away (a restart) rather than
        failing the message, whose retry would find its own fresh claim and, once the claim's lease
        ran out, send the mail a second time."""
        waited, pause = 0.0, 0.1
        while True:
            try:
                await self._sent_mail.mark_sent(event_id, recipient)
                return
            except Exception as exc:
                if not is_unavailable(exc) or waited >= MARK_SENT_PATIENCE_SECONDS:
                    raise
                log.warning("mail %s to %s went; recording it waits for the database (%r)", event_id, recipient, exc)
            await asyncio.sleep(pause)
            waited += pause
            pause = min(pause * 2, 2.0)
