"""Which mails a booking event causes, to whom, and what they say. Pure."""

from dataclasses import dataclass
from enum import StrEnum

from common.contracts import BookingData, Person
from common.schedule import zone_named

KINDS = ("booking.confirmed", "booking.cancelled", "booking.reassigned", "booking.needs_reschedule")


class Role(StrEnum):
    CLIENT = "client"
    PROFESSIONAL = "professional"


SUBJECTS = {
    ("booking.confirmed", Role.CLIENT): "Your appointment is confirmed",
    ("booking.confirmed", Role.PROFESSIONAL): "New appointment",
    ("booking.cancelled", Role.CLIENT): "Your appointment is cancelled",
    ("booking.cancelled", Role.PROFESSIONAL): "Appointment cancelled",
    ("booking.reassigned", Role.CLIENT): "Your appointment has a new professional",
    ("booking.reassigned", Role.PROFESSIONAL): "New appointment",
    ("booking.needs_reschedule", Role.CLIENT): "Your appointment needs a new time",
    ("booking.needs_reschedule", Role.PROFESSIONAL): "Appointment needs a new time",
}


@dataclass(frozen=True)
class Notice:
    """One mail to write: who reads it, in which role, about what."""

    kind: str
    role: Role
    reader: Person
    booking: BookingData

    @property
    def subject(self) -> str:
        return SUBJECTS[self.kind, self.role]

    @property
    def when(self) -> str:
        """The slot in the reader's own timezone, the zone named."""
        zone = zone_named(self.reader.timezone)
        start, end = self.booking.start.astimezone(zone), self.booking.end.astimezone(zone)
        return f"{start:%A %d %B %Y, %H:%M}–{end:%H:%M} ({zone.key})"

    @property
    def cancels_the_appointment(self) -> bool:
        """Whether the reader's calendar entry goes away (the same UID, METHOD:CANCEL)."""
        return self.kind in ("booking.cancelled", "booking.needs_reschedule")


def notices_for(kind: str, booking: BookingData) -> list[Notice]:
    """A mail to the client (when they gave an address) and to the professional."""
    if kind not in KINDS:
        return []
    readers = [(Role.CLIENT, booking.client), (Role.PROFESSIONAL, booking.professional)]
    return [Notice(kind, role, reader, booking) for role, reader in readers if reader.email]
