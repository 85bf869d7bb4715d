"""Which mails a booking event causes, to whom, and what they say. Pure."""

import hashlib
from dataclasses import dataclass
from email.utils import parseaddr
from uuid import UUID

from common.contracts import BookingData, Person
from common.events import BookingCancelled, BookingConfirmed, BookingEvent, BookingNeedsReschedule, BookingReassigned
from common.roles import Role
from common.schedule import zone_named

SUBJECTS = {
    (BookingConfirmed, Role.CLIENT): "Your appointment is confirmed",
    (BookingConfirmed, Role.PROFESSIONAL): "New appointment",
    (BookingCancelled, Role.CLIENT): "Your appointment is cancelled",
    (BookingCancelled, Role.PROFESSIONAL): "Appointment cancelled",
    (BookingReassigned, Role.CLIENT): "Your appointment has a new professional",
    (BookingReassigned, Role.PROFESSIONAL): "New appointment",
    (BookingNeedsReschedule, Role.CLIENT): "Your appointment needs a new time",
    (BookingNeedsReschedule, Role.PROFESSIONAL): "Appointment needs a new time",
}


@dataclass(frozen=True)
class Notice:
    """One mail to write: who reads it, in which role, about what."""

    event: type[BookingEvent]
    role: Role
    reader: Person
    booking: BookingData

    @property
    def kind(self) -> str:
        """The event's routing key, which the templates tell the mails apart by."""
        return self.event.routing_key

    @property
    def subject(self) -> str:
        return SUBJECTS[self.event, self.role]

    @property
    def when(self) -> str:
        """The slot in the reader's own timezone, the zone named."""
        zone = zone_named(self.reader.timezone)
        start, end = self.booking.start.astimezone(zone), self.booking.end.astimezone(zone)
        return f"{start:%A %d %B %Y, %H:%M}–{end:%H:%M} ({zone.key})"

    @property
    def cancels_the_appointment(self) -> bool:
        """Whether the reader's calendar entry goes away (the same UID, METHOD:CANCEL)."""
        return self.event in (BookingCancelled, BookingNeedsReschedule)


def notices_for(event: BookingEvent) -> list[Notice]:
    """A mail to the client (when they gave an address) and to the professional."""
    booking = event.data
    readers = [(Role.CLIENT, booking.client), (Role.PROFESSIONAL, booking.professional)]
    return [Notice(type(event), role, reader, booking) for role, reader in readers if reader.email]


@dataclass(frozen=True)
class Letterhead:
    """Who the mails are from: the sender, the mailbox replies and calendar answers go to, and the
    domain every id the mails carry ends in."""

    sender: str
    organizer: str
    domain: str

    @classmethod
    def of(cls, sender: str, organizer: str, domain: str = "") -> "Letterhead":
        domain = domain or parseaddr(sender)[1].rpartition("@")[2]
        if "." not in domain.strip("."):
            raise ValueError(f"the mail domain {domain!r} is not a full domain (MAIL_DOMAIN, or MAIL_FROM's address)")
        return cls(sender, organizer, domain)

    def message_id(self, event_id: UUID, recipient: str) -> str:
        """One Message-ID per mail the notifier ever means to send (an integration event, a
        recipient): every copy of a mail sent twice carries the same one, so a reader's mail
        client, and the fault tests, can tell a copy from a new mail."""
        return f"<{event_id}.{hashlib.sha256(recipient.encode()).hexdigest()[:16]}@{self.domain}>"

    def invite_uid(self, booking_id: UUID) -> str:
        """The same for every mail about one booking, so a calendar updates one entry."""
        return f"{booking_id}@{self.domain}"
