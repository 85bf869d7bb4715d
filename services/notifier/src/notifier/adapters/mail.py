"""A notice as a MIME message: plain text and HTML from templates, and an iCalendar invite."""

from datetime import UTC, datetime
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate, parseaddr

from icalendar import Calendar, Event, vCalAddress, vText
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from common.roles import Role
from notifier.domain import Notice

_templates = Environment(
    loader=PackageLoader("notifier", "templates"),
    autoescape=select_autoescape(["html.j2"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


def invite(notice: Notice, sequence: int, organizer: str) -> bytes:
    """The same UID for every mail about one booking, so a calendar updates one entry; METHOD:CANCEL
    removes it."""
    booking, cancel = notice.booking, notice.cancels_the_appointment
    calendar = Calendar()
    calendar.add("prodid", "-//Appointments//Booking//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancel else "REQUEST")
    event = Event()
    event.add("uid", f"{booking.id}@appointments")
    event.add("sequence", sequence)
    event.add("dtstamp", datetime.now(UTC))
    event.add("dtstart", booking.start.astimezone(UTC))
    event.add("dtend", booking.end.astimezone(UTC))
    other = booking.professional if notice.role is Role.CLIENT else booking.client
    event.add("summary", f"{booking.event_name}: appointment with {other.name}")
    event.add("status", "CANCELLED" if cancel else "CONFIRMED")
    event["organizer"] = vCalAddress(f"mailto:{parseaddr(organizer)[1]}")
    attendee = vCalAddress(f"mailto:{notice.reader.email}")
    attendee.params["cn"] = vText(notice.reader.name)
    event.add("attendee", attendee)
    calendar.add_component(event)
    return calendar.to_ical()


def compose(notice: Notice, sequence: int, sender: str, message_id: str, correlation_id: str | None) -> Message:
    """multipart/mixed: the text and HTML alternatives, then invite.ics. Built with the classic
    email.mime classes: the modern header registry took ~10 ms a mail, most of the notifier's CPU."""
    context = {"notice": notice, "booking": notice.booking}
    body = MIMEMultipart("alternative")
    body.attach(MIMEText(_templates.get_template(f"{notice.role.value}.txt.j2").render(context), "plain", "utf-8"))
    body.attach(MIMEText(_templates.get_template(f"{notice.role.value}.html.j2").render(context), "html", "utf-8"))
    calendar = MIMEText(invite(notice, sequence, sender).decode(), "calendar", "utf-8")
    calendar.set_param("method", "CANCEL" if notice.cancels_the_appointment else "REQUEST")
    calendar.add_header("Content-Disposition", "attachment", filename="invite.ics")
    message = MIMEMultipart("mixed")
    message["From"] = sender
    message["To"] = notice.reader.email
    message["Subject"] = Header(notice.subject, "utf-8")
    message["Message-ID"] = message_id
    message["Date"] = formatdate(localtime=False)
    if correlation_id:
        message["X-Correlation-ID"] = correlation_id  # lets support trace a mail back to the request
    message.attach(body)
    message.attach(calendar)
    return message
