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
from datetime import UTC, datetime
from uuid import UUID

import aiosmtplib

from common.claim_links import claim_link
from common.events import BookingEvent, WaitlistEvent, WaitlistOffered
from common.unavailable import is_unavailable
from notifier.adapters.db import Claim, Reminders, SentMail
from notifier.adapters.mail import compose
from notifier.adapters.smtp import SmtpMailer
from notifier.domain import Letterhead, Notice, notices_for, reminder_id, reminder_notices, waitlist_notices
from notifier.metrics import MAILS

log = logging.getLogger(__name__)


class MailNotSent(Exception):
    """The SMTP server did not take a mail (down, timing out, a temporary refusal)."""


class ClaimedElsewhere(Exception):
    """Another notifier is sending this mail right now; look again later."""


MARK_SENT_PATIENCE_SECONDS = 60.0


class Notifier:
    def __init__(
        self,
        sent_mail: SentMail,
        reminders: Reminders,
        mailer: SmtpMailer,
        letterhead: Letterhead,
        public_url: str,
        claim_secret: str,
    ) -> None:
        self._sent_mail = sent_mail
        self._reminders = reminders
        self._mailer = mailer
        self._letterhead = letterhead
        self._public_url = public_url
        self._claim_secret = claim_secret

    async def handle(self, event: BookingEvent) -> None:
        # Each mail's hand-over and its record are one step that nothing cancels halfway: a broker
        # connection closing cancels the handler, and a cancel between the SMTP server's 250 and
        # the "sent" mark would send the mail again.
        await self._reminders.keep(event.data, event.sequence)  # first: a redelivery keeps it again, harmlessly
        for notice in notices_for(event):
            await asyncio.shield(self._deliver(event.event_id, notice, event.sequence, event.correlation_id))

    async def handle_waitlist(self, event: WaitlistEvent) -> None:
        """An offer, with the link that claims it, or its expiry: to the waiting client."""
        entry = event.data
        link = None
        if isinstance(event, WaitlistOffered) and entry.offer_expires_at is not None:
            link = claim_link(self._public_url, entry.id, entry.offer_expires_at, self._claim_secret)
        for notice in waitlist_notices(entry, event.routing_key, link):
            await asyncio.shield(self._deliver(event.event_id, notice, event.sequence, event.correlation_id))

    async def remind(self, now: datetime) -> int:
        """Send the reminders due by ``now``, each once (its mails are claimed and recorded as an
        event's are, so several notifiers and restarts send each once); one whose appointment has
        begun meanwhile (the notifier was away) is dropped. Returns how many were sent."""
        sent = 0
        for due in await self._reminders.due(now):
            if due.booking.start > now:
                mail_id = reminder_id(due.booking.id, due.due_at)
                try:
                    for notice in reminder_notices(due.booking):
                        await asyncio.shield(self._deliver(mail_id, notice, due.sequence, None))
                except ClaimedElsewhere:
                    continue  # another notifier is sending it: it records it
                except (MailNotSent, aiosmtplib.SMTPRecipientsRefused) as failed:
                    log.warning("reminder for booking %s not sent now, tried again soon: %r", due.booking.id, failed)
                    continue
                sent += 1
            await self._reminders.mark_sent(due.booking.id, due.due_at)
        return sent

    async def remind_every(self, seconds: float) -> None:
        while True:
            await self.remind(datetime.now(UTC))
            await asyncio.sleep(seconds)

    async def _deliver(self, mail_id: UUID, notice: Notice, sequence: int, correlation_id: str | None) -> None:
        """One mail, once: claimed under (``mail_id``, recipient), sent, recorded."""
        booking = notice.booking
        recipient = notice.reader.email
        claim = await self._sent_mail.claim(mail_id, recipient)
        if claim is Claim.SENT:
            log.info("mail for %s to %s was sent already", mail_id, recipient)
            MAILS.labels("duplicate").inc()
            return
        if claim is Claim.ELSEWHERE:
            raise ClaimedElsewhere(f"{mail_id} to {recipient}")
        message_id = self._letterhead.message_id(mail_id, recipient)
        mail = compose(notice, sequence, self._letterhead, message_id, correlation_id)
        try:
            async with self._sent_mail.renewed(mail_id, recipient):
                await self._mailer.send(mail)
        except aiosmtplib.SMTPRecipientsRefused as refused:
            if any(r.code < 500 for r in refused.recipients):  # a 4xx: try again later
                await self._sent_mail.unclaim(mail_id, recipient)
                MAILS.labels("retried").inc()
                raise
            # A 5xx: this address will never take it. The other readers still get theirs.
            log.warning("the SMTP server refused %s for %s for good: %s", recipient, mail_id, refused)
            await self._sent_mail.mark_refused(mail_id, recipient)
            MAILS.labels("refused").inc()
            return
        except aiosmtplib.SMTPException as exc:
            await self._sent_mail.unclaim(mail_id, recipient)  # so the retry can claim it at once
            MAILS.labels("retried").inc()
            # Not one of our own servers: an SMTP server that keeps failing gets the retries
            # and then the parking of any failing message, where an operator sees it.
            raise MailNotSent(f"{recipient}: {exc!r}") from exc
        except BaseException:
            await self._sent_mail.unclaim(mail_id, recipient)
            raise
        await self._record_sent(mail_id, recipient)
        MAILS.labels("sent").inc()
        log.info("sent %s for %s to %s", notice.kind, booking.id, recipient)

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
