"""Calendar feeds: a person's confirmed appointments as one iCalendar document at a private URL a
calendar application subscribes to (no sign-in: the URL is the key). The token is 256 random bits
and only its hash is stored; a new feed replaces the old (whose URL then stops working), and a
revoked one answers 404. The entries carry the same UIDs and SEQUENCEs as the mails' invites, so
a calendar that has both keeps one entry per booking."""

import hashlib
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event

from booking.adapters.repository import BookingUnitOfWork
from booking.domain import Appointment
from common.auth import Identity
from common.calendar import booking_uid
from common.errors import not_found

TOKEN_BYTES = 32
TOKEN_PATTERN = r"[A-Za-z0-9_-]{43}"  # what secrets.token_urlsafe(32) makes
PAST_SHOWN = timedelta(days=90)  # a feed lists the appointments of the last 90 days and every one ahead


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def calendar_of(appointments: list[Appointment], domain: str, name: str) -> bytes:
    """The iCalendar document (no METHOD: a published calendar, not an invitation). Stable for the
    same appointments: DTSTAMP is each one's last change, so the document's ETag changes exactly
    when an appointment does."""
    calendar = Calendar()
    calendar.add("prodid", "-//Appointments//Calendar feed//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", name)
    calendar.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    for appointment in appointments:
        entry = Event()
        entry.add("uid", booking_uid(appointment.booking_id, domain))
        entry.add("sequence", appointment.sequence)
        entry.add("dtstamp", appointment.changed_at.astimezone(UTC))
        entry.add("dtstart", appointment.start.astimezone(UTC))
        entry.add("dtend", appointment.end.astimezone(UTC))
        entry.add("summary", f"{appointment.event_name}: appointment with {appointment.with_whom}")
        entry.add("status", "CONFIRMED")
        calendar.add_component(entry)
    return calendar.to_ical()


class CalendarFeeds:
    def __init__(self, units_of_work: Callable[..., BookingUnitOfWork], public_url: str, domain: str) -> None:
        self._uow = units_of_work
        self._public_url = public_url.rstrip("/")
        self._domain = domain

    async def make(self, who: Identity) -> str:
        """A new subscription URL for ``who``'s appointments (the one they had stops working)."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        async with self._uow() as uow:
            await uow.record.replace_feed(who.id, who.role, token_hash(token))
        return f"{self._public_url}/api/v1/calendar/{token}.ics"

    async def revoke(self, who: Identity) -> None:
        async with self._uow() as uow:
            if not await uow.record.drop_feed(who.id):
                raise not_found("calendar feed")

    async def calendar(self, token: str) -> bytes:
        """The feed's document as of now; 404 for a token that names no feed (one that could not be
        a token is not looked for)."""
        if not re.fullmatch(TOKEN_PATTERN, token):
            raise not_found("calendar feed")
        async with self._uow() as uow:
            owner = await uow.record.feed_owner(token_hash(token))
            if owner is None:
                raise not_found("calendar feed")
            person_id, role = owner
            appointments = await uow.record.appointments_of(person_id, role, datetime.now(UTC) - PAST_SHOWN)
        return calendar_of(appointments, self._domain, "Appointments")
