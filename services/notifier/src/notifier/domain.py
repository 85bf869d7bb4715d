"""Which mails a booking event causes, to whom, and what they say. Pure."""

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from common.calendar import booking_uid
from common.contracts import BookingData, MovedBookingData, Person, RescheduledBookingData, WaitlistEntryData
from common.events import BookingEvent
from common.roles import Role
from common.schedule import zone_named

MOVED_AWAY = "booking.rescheduled.away"  # to the professional a reschedule took the booking from
MOVED_HERE = "booking.rescheduled.here"  # to the professional it gave the booking to
REASSIGNED_AWAY = "booking.reassigned.away"  # to the professional a reassignment took the booking from
REMINDER = "booking.reminder"  # not an event's: the notifier's own, reminder_at before the start

SUBJECTS = {
    ("booking.confirmed", Role.CLIENT): "Your appointment is confirmed",
    ("booking.confirmed", Role.PROFESSIONAL): "New appointment",
    ("booking.cancelled", Role.CLIENT): "Your appointment is cancelled",
    ("booking.cancelled", Role.PROFESSIONAL): "Appointment cancelled",
    ("booking.reassigned", Role.CLIENT): "Your appointment has a new professional",
    ("booking.reassigned", Role.PROFESSIONAL): "New appointment",
    ("booking.needs_reschedule", Role.CLIENT): "Your appointment needs a new time",
    ("booking.needs_reschedule", Role.PROFESSIONAL): "Appointment needs a new time",
    ("booking.rescheduled", Role.CLIENT): "Your appointment has moved",
    ("booking.rescheduled", Role.PROFESSIONAL): "Appointment moved",
    (MOVED_AWAY, Role.PROFESSIONAL): "Appointment moved to another professional",
    (MOVED_HERE, Role.PROFESSIONAL): "New appointment",
    (REASSIGNED_AWAY, Role.PROFESSIONAL): "Appointment given to another professional",
    (REMINDER, Role.CLIENT): "Reminder: your appointment",
    (REMINDER, Role.PROFESSIONAL): "Reminder: appointment",
    ("waitlist.offered", Role.CLIENT): "A place is free for you",
    ("waitlist.expired", Role.CLIENT): "Your offer has expired",
}
CANCELLING = {"booking.cancelled", "booking.needs_reschedule", MOVED_AWAY, REASSIGNED_AWAY}


@dataclass(frozen=True)
class Notice:
    """One mail to write: who reads it, in which role, about what (``kind``: the event's routing
    key, or ``MOVED_AWAY``/``MOVED_HERE``), and the slot the reader's calendar entry is for."""

    kind: str
    role: Role
    reader: Person
    booking: BookingData | WaitlistEntryData  # a waitlist entry for the waitlist's mails
    start: datetime
    end: datetime
    claim_link: str | None = None  # a waitlist offer's: books the unit held, no sign-in needed

    @property
    def with_invite(self) -> bool:
        """An appointment's mails carry its invite; a waitlist's (no appointment yet) none."""
        return not isinstance(self.booking, WaitlistEntryData)

    @property
    def offer_expires(self) -> str | None:
        """Until when a waitlist offer holds, in the reader's own timezone."""
        if not isinstance(self.booking, WaitlistEntryData) or self.booking.offer_expires_at is None:
            return None
        return f"{self.booking.offer_expires_at.astimezone(zone_named(self.reader.timezone)):%H:%M on %A %d %B}"

    @property
    def subject(self) -> str:
        return SUBJECTS[self.kind, self.role]

    @property
    def when(self) -> str:
        """The slot in the reader's own timezone, the zone named."""
        return self._in_readers_zone(self.start, self.end)

    @property
    def previously(self) -> str | None:
        """Where a rescheduled booking was, in the reader's own timezone."""
        if not isinstance(self.booking, RescheduledBookingData):
            return None
        return self._in_readers_zone(self.booking.previous_start, self.booking.previous_end)

    @property
    def cancels_the_appointment(self) -> bool:
        """Whether the reader's calendar entry goes away (the same UID, METHOD:CANCEL)."""
        return self.kind in CANCELLING

    def _in_readers_zone(self, start: datetime, end: datetime) -> str:
        zone = zone_named(self.reader.timezone)
        start, end = start.astimezone(zone), end.astimezone(zone)
        return f"{start:%A %d %B %Y, %H:%M}–{end:%H:%M} ({zone.key})"


def notices_for(event: BookingEvent) -> list[Notice]:
    """A mail to the client (when they gave an address) and to the professional; a reschedule or
    a reassignment that changed the professional tells the one who lost the booking (their entry,
    at its old time, cancelled), and a reschedule the one who gained it as a new appointment."""
    booking, kind = event.data, event.routing_key
    readers = [(kind, Role.CLIENT, booking.client), (kind, Role.PROFESSIONAL, booking.professional)]
    notices = [Notice(k, role, reader, booking, booking.start, booking.end) for k, role, reader in readers if reader.email]
    if not isinstance(booking, MovedBookingData) or booking.previous_professional.id == booking.professional.id:
        return notices
    lost = booking.previous_professional
    if isinstance(booking, RescheduledBookingData):
        notices = [n if n.role is Role.CLIENT else replace(n, kind=MOVED_HERE) for n in notices]
        away = Notice(MOVED_AWAY, Role.PROFESSIONAL, lost, booking, booking.previous_start, booking.previous_end)
    else:
        away = Notice(REASSIGNED_AWAY, Role.PROFESSIONAL, lost, booking, booking.start, booking.end)
    return notices + ([away] if lost.email else [])


def waitlist_notices(entry: WaitlistEntryData, kind: str, claim_link: str | None) -> list[Notice]:
    """An offer (with its claim link) or its expiry, to the waiting client when they gave an address."""
    if not entry.client.email:
        return []
    return [Notice(kind, Role.CLIENT, entry.client, entry, entry.start, entry.end, claim_link)]


def reminder_notices(booking: BookingData) -> list[Notice]:
    """The reminder of a booking, to its client (when they gave an address) and professional."""
    readers = [(Role.CLIENT, booking.client), (Role.PROFESSIONAL, booking.professional)]
    return [Notice(REMINDER, role, reader, booking, booking.start, booking.end) for role, reader in readers if reader.email]


def reminder_id(booking_id: UUID, due_at: datetime) -> UUID:
    """What a reminder's mails are recorded (and their Message-IDs made) under, as an event's are
    under its id: one per booking and due time, so a moved booking is reminded again, once."""
    return uuid5(NAMESPACE_URL, f"urn:appointments:reminder:{booking_id}:{due_at.isoformat()}")


@dataclass(frozen=True)
class Letterhead:
    """Who the mails are from: the sender, the mailbox replies and calendar answers go to, and the
    domain every id the mails carry ends in."""

    sender: str
    organizer: str
    domain: str  # a full one (``ServiceSettings.mail_domain``)

    def message_id(self, event_id: UUID, recipient: str) -> str:
        """One Message-ID per mail the notifier ever means to send (an integration event, a
        recipient): every copy of a mail sent twice carries the same one, so a reader's mail
        client, and the fault tests, can tell a copy from a new mail."""
        return f"<{event_id}.{hashlib.sha256(recipient.encode()).hexdigest()[:16]}@{self.domain}>"

    def invite_uid(self, booking_id: UUID) -> str:
        """The same for every mail about one booking (and in the calendar feeds), so a calendar
        updates one entry."""
        return booking_uid(booking_id, self.domain)
