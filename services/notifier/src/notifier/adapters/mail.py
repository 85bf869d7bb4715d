"""A notice as a MIME message: plain text and HTML from templates, and an iCalendar invite."""

from datetime import UTC, datetime
from email.header import Header
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, parseaddr

from icalendar import Calendar, Event, vCalAddress, vText
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from common.roles import Role
from notifier.domain import Letterhead, Notice

_templates = Environment(
    loader=PackageLoader("notifier", "templates"),
    autoescape=select_autoescape(["html.j2"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


def invite(notice: Notice, sequence: int, letterhead: Letterhead) -> bytes:
    """The same UID for every mail about one booking, so a calendar updates one entry; METHOD:CANCEL
    removes it."""
    booking, cancel = notice.booking, notice.cancels_the_appointment
    calendar = Calendar()
    calendar.add("prodid", "-//Appointments//Booking//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancel else "REQUEST")
    event = Event()
    event.add("uid", letterhead.invite_uid(booking.id))
    event.add("sequence", sequence)
    event.add("dtstamp", datetime.now(UTC))
    event.add("dtstart", notice.start.astimezone(UTC))
    event.add("dtend", notice.end.astimezone(UTC))
    other = booking.professional if notice.role is Role.CLIENT else booking.client
    event.add("summary", f"{booking.event_name}: appointment with {other.name}")
    event.add("status", "CANCELLED" if cancel else "CONFIRMED")
    name, address = parseaddr(letterhead.organizer)
    organizer = vCalAddress(f"mailto:{address}")
    if name:
        organizer.params["cn"] = vText(name)
    event["organizer"] = organizer
    attendee = vCalAddress(f"mailto:{notice.reader.email}")
    attendee.params["cn"] = vText(notice.reader.name)
    event.add("attendee", attendee)
    calendar.add_component(event)
    return calendar.to_ical()


def compose(notice: Notice, sequence: int, letterhead: Letterhead, message_id: str, correlation_id: str | None) -> Message:
    """multipart/mixed: a multipart/alternative of the text, the HTML and the invite as
    text/calendar (where Outlook and Gmail look for an invitation to show with its buttons), then
    the same invite as invite.ics (for the clients that only import attachments). Built with the
    classic email.mime classes: the modern header registry took ~10 ms a mail, most of the
    notifier's CPU."""
    context = {"notice": notice, "booking": notice.booking}
    body = MIMEMultipart("alternative")
    body.attach(MIMEText(_templates.get_template(f"{notice.role.value}.txt.j2").render(context), "plain", "utf-8"))
    body.attach(MIMEText(_templates.get_template(f"{notice.role.value}.html.j2").render(context), "html", "utf-8"))
    attachment = None
    if notice.with_invite:
        ics = invite(notice, sequence, letterhead).decode()
        inline = MIMEText(ics, "calendar", "utf-8")
        inline.set_param("method", "CANCEL" if notice.cancels_the_appointment else "REQUEST")
        body.attach(inline)
        attachment = MIMEApplication(ics.encode(), "ics", name="invite.ics")
        attachment.add_header("Content-Disposition", "attachment", filename="invite.ics")
    message = MIMEMultipart("mixed")
    message["From"] = letterhead.sender
    message["Reply-To"] = letterhead.organizer
    message["To"] = notice.reader.email
    message["Subject"] = Header(notice.subject, "utf-8")
    message["Message-ID"] = message_id
    message["Date"] = format_datetime(datetime.now(UTC))  # "+0000": the time is known to be UTC ("-0000" says it is not)
    if correlation_id:
        message["X-Correlation-ID"] = correlation_id  # lets support trace a mail back to the request
    message.attach(body)
    if attachment is not None:
        message.attach(attachment)
    return message
