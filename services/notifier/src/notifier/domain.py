"""Which mails a booking event causes, and what they say. Pure."""

from dataclasses import dataclass

from common.contracts import BookingData, Person
from common.schedule import zone_named


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


def local_time(booking: BookingData, reader: Person) -> str:
    zone = zone_named(reader.timezone)
    start, end = booking.start.astimezone(zone), booking.end.astimezone(zone)
    return f"{start:%A %d %B %Y, %H:%M}–{end:%H:%M} ({zone.key})"


_CLIENT = {
    "booking.confirmed": ("Your appointment is confirmed", "Your appointment at {event} with {pro} on {when} is confirmed."),
    "booking.cancelled": ("Your appointment is cancelled", "Your appointment at {event} with {pro} on {when} is cancelled."),
    "booking.reassigned": ("Your appointment has a new professional", "Your appointment at {event} on {when} is now with {pro}."),
    "booking.needs_reschedule": (
        "Your appointment needs a new time",
        "Your appointment at {event} on {when} can no longer take place; please book another slot.",
    ),
}
_PROFESSIONAL = {
    "booking.confirmed": ("New appointment", "You have a new appointment at {event} with {client} on {when}."),
    "booking.cancelled": ("Appointment cancelled", "Your appointment at {event} with {client} on {when} is cancelled."),
    "booking.reassigned": ("New appointment", "An appointment at {event} with {client} on {when} is now yours."),
    "booking.needs_reschedule": ("Appointment needs a new time", "The appointment with {client} on {when} needs a new time."),
}


def mails_for(event_type: str, booking: BookingData) -> list[Mail]:
    if event_type not in _CLIENT:
        return []
    mails = []
    for reader, templates in ((booking.client, _CLIENT), (booking.professional, _PROFESSIONAL)):
        if not reader.email:
            continue
        subject, text = templates[event_type]
        body = text.format(
            event=booking.event_name, pro=booking.professional.name, client=booking.client.name, when=local_time(booking, reader)
        )
        mails.append(Mail(reader.email, subject, f"Hello {reader.name},\n\n{body}\n"))
    return mails
