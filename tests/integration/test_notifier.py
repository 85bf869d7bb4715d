"""The notifier on real RabbitMQ, PostgreSQL and an SMTP server the tests read."""

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from icalendar import Calendar

import notifier
from common.contracts import BookingData, BookingStatus, Person, RescheduledBookingData
from common.envelope import BOOKINGS_EXCHANGE, IntegrationEvent
from common.messaging import Broker
from common.migrations import migrate
from devstack.mailsink import MailSink
from notifier.app import create_app
from notifier.settings import Settings
from tests.conftest import free_port_block
from tests.factories import message
from tests.faults.proxy import FaultProxy


@pytest.fixture
async def notifier_database(servers) -> str:
    url = servers.database_url(f"notifier_{uuid.uuid4().hex[:6]}")  # its own: the system's notifier must not claim these
    await migrate(Path(notifier.__file__).parent, url)
    return url


class Notifiers:
    """Notifier instances sharing one queue, and the SMTP server they send to."""

    def __init__(self, servers, database_url: str) -> None:
        self.queue = f"test.notifier.{uuid.uuid4().hex[:8]}"
        self.port = free_port_block(1)
        self.mail = MailSink(port=self.port)
        self.runners: list[web.AppRunner] = []
        self.settings = Settings(
            database_url=database_url,
            rabbitmq_url=servers.rabbitmq_url,
            smtp_host="127.0.0.1",
            smtp_port=self.port,
            queue_name=self.queue,
            retry_delays=(0.2, 0.5, 1.0, 2.0),
            smtp_timeout_seconds=2,
            reminder_check_seconds=0.2,
        )

    async def start(self, instances: int = 1) -> None:
        for _ in range(instances):
            runner = web.AppRunner(create_app(self.settings))
            await runner.setup()  # opens the database, connects, subscribes
            self.runners.append(runner)

    async def stop(self) -> None:
        for runner in self.runners:
            await runner.cleanup()


@pytest.fixture
async def notifiers(servers, notifier_database):
    running = Notifiers(servers, notifier_database)
    yield running
    await running.stop()
    running.mail.stop()


@pytest.fixture
async def publisher(servers):
    broker = Broker(servers.rabbitmq_url, "test-publisher")
    await broker.connect()
    yield broker
    await broker.close()


def booking(
    client_email: str | None = "casey@test.example", status=BookingStatus.CONFIRMED, reminder_in: float | None = None
) -> BookingData:
    """A booking in 2030, or (``reminder_in``) one whose reminder is due that many seconds from now."""
    start = datetime(2030, 6, 3, 14, 0, tzinfo=UTC)
    reminder_at = None
    if reminder_in is not None:
        reminder_at = datetime.now(UTC) + timedelta(seconds=reminder_in)
        start = reminder_at + timedelta(hours=24)
    return BookingData(
        id=uuid.uuid4(),
        event_id=uuid.uuid4(),
        event_name="Harbour Clinic",
        start=start,
        end=start + timedelta(minutes=30),
        status=status,
        client=Person(id=uuid.uuid4(), name="Casey Client", email=client_email, timezone="America/New_York"),
        professional=Person(
            id=uuid.uuid4(), name="Dr. Mira Okafor", email=f"mira-{uuid.uuid4().hex[:6]}@test.example", timezone="Asia/Tokyo"
        ),
        reminder_at=reminder_at,
    )


def event_of(kind: str, data: BookingData, sequence: int = 1) -> IntegrationEvent:
    """As the booking service publishes it."""
    return message(kind, data.id, sequence, data).envelope()


def invite_of(message) -> Calendar:
    """The invite as calendar clients find it: text/calendar inside the multipart/alternative
    (Outlook and Gmail show it as an invitation), and the same as an invite.ics attachment."""
    (alternative,) = (p for p in message.iter_parts() if p.get_content_type() == "multipart/alternative")
    (inline,) = (p for p in alternative.iter_parts() if p.get_content_type() == "text/calendar")
    (attachment,) = (p for p in message.iter_attachments() if p.get_filename() == "invite.ics")
    assert attachment.get_content_type() == "application/ics"
    assert attachment.get_content().decode() == inline.get_content()
    calendar = Calendar.from_ical(inline.get_content())
    assert inline.get_param("method") == str(calendar["method"])
    return calendar


async def test_a_confirmation_mails_client_and_professional_in_their_own_time_with_an_invite(notifiers, publisher):
    notifiers.mail.start()
    await notifiers.start()
    data = booking()
    await publisher.publish(BOOKINGS_EXCHANGE, event_of("booking.confirmed", data))
    to_client = (await asyncio.to_thread(notifiers.mail.wait_for, 1, 10, "casey@test.example"))[0]
    to_pro = (await asyncio.to_thread(notifiers.mail.wait_for, 1, 10, data.professional.email))[0]

    text, html = to_client.get_body(("plain",)).get_content(), to_client.get_body(("html",)).get_content()
    assert to_client["Subject"] == "Your appointment is confirmed"
    assert "Dr. Mira Okafor" in text and "10:00–10:30 (America/New_York)" in text  # 14:00 UTC in New York, June
    assert "<strong>Dr. Mira Okafor</strong>" in html
    assert "23:00–23:30 (Asia/Tokyo)" in to_pro.get_body(("plain",)).get_content()
    assert "Casey Client" in to_pro.get_body(("plain",)).get_content()
    calendar = invite_of(to_client)
    assert str(calendar["method"]) == "REQUEST"
    (entry,) = calendar.walk("VEVENT")
    assert str(entry["uid"]) == f"{data.id}@appointments.example"  # MAIL_DOMAIN (a full one)
    assert entry.decoded("dtstart") == data.start
    assert str(entry["organizer"]) == "mailto:appointments@appointments.example"
    assert entry["organizer"].params["cn"] == "Appointments"
    assert to_client["Reply-To"] == "Appointments <appointments@appointments.example>"
    assert to_client["Message-ID"].endswith("@appointments.example>")
    assert to_client["Date"].endswith(" +0000")  # the time is known to be UTC; "-0000" would say it is not
    assert parsedate_to_datetime(to_client["Date"]).tzinfo is not None

    no_address = booking(client_email=None)
    await publisher.publish(BOOKINGS_EXCHANGE, event_of("booking.confirmed", no_address))
    await asyncio.to_thread(notifiers.mail.wait_for, 1, 10, no_address.professional.email)
    await asyncio.sleep(0.5)
    assert [m["To"] for m in notifiers.mail.messages].count(None) == 0
    assert len(notifiers.mail.messages) == 3  # the client without an address gets none


async def test_a_cancellation_cancels_the_same_calendar_entry(notifiers, publisher):
    notifiers.mail.start()
    await notifiers.start()
    data = booking()
    await publisher.publish(BOOKINGS_EXCHANGE, event_of("booking.confirmed", data, 1))
    cancelled = data.model_copy(update={"status": BookingStatus.CANCELLED})
    await publisher.publish(BOOKINGS_EXCHANGE, event_of("booking.cancelled", cancelled, 2))
    mails = await asyncio.to_thread(notifiers.mail.wait_for, 2, 10, "casey@test.example")
    request, cancel = (invite_of(m) for m in sorted(mails, key=lambda m: m["Subject"] != "Your appointment is confirmed"))
    assert (str(request["method"]), str(cancel["method"])) == ("REQUEST", "CANCEL")
    (first,), (second,) = request.walk("VEVENT"), cancel.walk("VEVENT")
    assert first["uid"] == second["uid"] and second.decoded("sequence") > first.decoded("sequence")
    assert str(second["status"]) == "CANCELLED"


async def test_a_redelivered_event_sends_each_mail_once(notifiers, publisher):
    notifiers.mail.start()
    await notifiers.start()
    message = event_of("booking.confirmed", booking())
    for _ in range(3):
        await publisher.publish(BOOKINGS_EXCHANGE, message)
    await asyncio.to_thread(notifiers.mail.wait_for, 2, 10)
    await asyncio.sleep(1.0)  # time for any duplicate to show up
    assert len(notifiers.mail.messages) == 2


async def test_smtp_down_then_up_delivers_the_mail_once(notifiers, publisher):
    await notifiers.start()  # no SMTP server yet: the first attempts fail and are retried later
    await publisher.publish(BOOKINGS_EXCHANGE, event_of("booking.confirmed", booking()))
    await asyncio.sleep(1.0)
    notifiers.mail.start()
    await asyncio.to_thread(notifiers.mail.wait_for, 2, 10)
    await asyncio.sleep(1.5)
    assert Counter(m["To"] for m in notifiers.mail.messages).most_common(1)[0][1] == 1


async def test_a_message_that_keeps_failing_is_parked_listed_and_replayed_and_the_next_still_goes(notifiers, publisher, servers):
    await notifiers.start()  # SMTP stays down through every retry (0.2 + 0.5 + 1 + 2 s)
    stuck = booking()
    await publisher.publish(BOOKINGS_EXCHANGE, event_of("booking.confirmed", stuck))
    parked = []
    for _ in range(100):
        parked = await publisher.dead_letters(notifiers.queue)
        if parked:
            break
        await asyncio.sleep(0.1)
    assert [p["type"] for p in parked] == ["booking.confirmed"]
    assert "Connect" in parked[0]["because"]  # why it was parked: the SMTP connection kept failing
    notifiers.mail.start()
    later = booking()
    await publisher.publish(BOOKINGS_EXCHANGE, event_of("booking.confirmed", later))
    await asyncio.to_thread(notifiers.mail.wait_for, 1, 10, later.professional.email)  # the consumer did not stall
    assert await publisher.replay_dead_letters(notifiers.queue) == 1
    await asyncio.to_thread(notifiers.mail.wait_for, 1, 10, stuck.professional.email)
    assert await publisher.dead_letters(notifiers.queue) == []


async def test_two_notifiers_on_one_queue_send_every_mail_once(notifiers, publisher):
    notifiers.mail.start()
    await notifiers.start(instances=2)
    bookings = [booking() for _ in range(20)]
    for data in bookings:
        message = event_of("booking.confirmed", data)
        await publisher.publish(BOOKINGS_EXCHANGE, message)
        await publisher.publish(BOOKINGS_EXCHANGE, message)  # and every one redelivered
    await asyncio.to_thread(notifiers.mail.wait_for, 40, 20)
    await asyncio.sleep(1.0)
    sent = Counter((m["To"], m["Message-ID"]) for m in notifiers.mail.messages)
    assert len(sent) == 40 and set(sent.values()) == {1}


async def test_a_mail_the_smtp_server_is_slow_to_accept_is_sent_once_though_another_notifier_has_it_too(notifiers, publisher):
    """The server answers a mail's data 3 s late: later than a command may take (2 s), and twice as
    late as a claim lasts unrenewed (1.5 s; renewed every 0.5 s, a margin a loaded CI machine
    needs: with 0.5 s, renewed every 0.17 s, one late renewal once lost the claim). The sender
    waits for it, and keeps its claim, so the second notifier, given the same event, finds the
    mail sent rather than sending it again."""
    notifiers.mail.start()
    slow = FaultProxy("127.0.0.1", notifiers.port)
    await slow.start()
    notifiers.settings = notifiers.settings.model_copy(update={"smtp_port": slow.port, "claim_lease_seconds": 1.5})
    await notifiers.start(instances=2)
    slow.arm(b"\r\n.\r\n", after_reply=True, late=3.0)
    message = event_of("booking.confirmed", booking())
    await publisher.publish(BOOKINGS_EXCHANGE, message)
    await publisher.publish(BOOKINGS_EXCHANGE, message)
    await asyncio.to_thread(notifiers.mail.wait_for, 2, 10)
    await asyncio.sleep(4.0)  # past every retry of the second copy
    assert slow.injected == ["late before the reply reached the client"]
    assert sorted(Counter(m["Message-ID"] for m in notifiers.mail.messages).values()) == [1, 1]
    await slow.stop()


def reminders_to(mail: MailSink, recipient: str) -> list:
    return [m for m in mail.messages if m["To"] == recipient and m["Subject"].startswith("Reminder")]


async def until_reminded(mail: MailSink, data: BookingData, timeout: float = 10.0) -> None:
    """Until the professional of ``data`` has its reminder (a later one: by then any copy of an
    earlier one would have been sent too)."""
    await asyncio.to_thread(mail.wait_for, 1, timeout, data.professional.email, "Reminder: appointment")


async def test_a_reminder_goes_once_when_due_with_two_notifiers_each_in_the_reader_s_time(notifiers, publisher):
    notifiers.mail.start()
    await notifiers.start(instances=2)
    data = booking(reminder_in=1.0)
    for _ in range(2):  # delivered twice, too
        await publisher.publish(BOOKINGS_EXCHANGE, event_of("booking.confirmed", data))
    await until_reminded(notifiers.mail, data)
    assert datetime.now(UTC) >= data.reminder_at
    later = booking(client_email="later@test.example", reminder_in=1.0)
    await publisher.publish(BOOKINGS_EXCHANGE, event_of("booking.confirmed", later))
    await until_reminded(notifiers.mail, later)  # sweeps enough for a second copy of the first
    (to_client,) = reminders_to(notifiers.mail, "casey@test.example")
    assert len(reminders_to(notifiers.mail, data.professional.email)) == 1
    zone = ZoneInfo("America/New_York")
    local_start = data.start.astimezone(zone)
    assert f"{local_start:%H:%M}" in to_client.get_body(("plain",)).get_content()
    assert to_client["Subject"] == "Reminder: your appointment"
    assert str(invite_of(to_client)["method"]) == "REQUEST"


async def test_a_reminder_due_while_no_notifier_ran_goes_once_when_one_starts_again(notifiers, publisher):
    notifiers.mail.start()
    await notifiers.start()
    data = booking(reminder_in=1.0)
    await publisher.publish(BOOKINGS_EXCHANGE, event_of("booking.confirmed", data))
    await asyncio.to_thread(notifiers.mail.wait_for, 1, 10, data.professional.email, "New appointment")
    await notifiers.stop()
    await asyncio.sleep(max(0.0, (data.reminder_at - datetime.now(UTC)).total_seconds()))  # due while none ran
    notifiers.runners = []
    await notifiers.start()
    await until_reminded(notifiers.mail, data)
    marker = booking(reminder_in=0.5)
    await publisher.publish(BOOKINGS_EXCHANGE, event_of("booking.confirmed", marker))
    await until_reminded(notifiers.mail, marker)
    assert len(reminders_to(notifiers.mail, data.professional.email)) == 1


async def test_no_reminder_for_a_cancelled_booking_and_a_moved_one_is_reminded_at_its_new_time(notifiers, publisher):
    notifiers.mail.start()
    await notifiers.start()
    cancelled = booking(reminder_in=1.0)
    await publisher.publish(BOOKINGS_EXCHANGE, event_of("booking.confirmed", cancelled))
    gone = cancelled.model_copy(update={"status": BookingStatus.CANCELLED})
    await publisher.publish(BOOKINGS_EXCHANGE, event_of("booking.cancelled", gone, 2))

    moved = booking(reminder_in=1.0)
    await publisher.publish(BOOKINGS_EXCHANGE, event_of("booking.confirmed", moved))
    later = moved.start + timedelta(hours=2)
    now_at = RescheduledBookingData(
        **moved.model_dump()
        | {"start": later, "end": later + timedelta(minutes=30), "reminder_at": moved.reminder_at + timedelta(seconds=1.5)},
        previous_start=moved.start,
        previous_end=moved.end,
        previous_professional=moved.professional,
    )
    await publisher.publish(BOOKINGS_EXCHANGE, event_of("booking.rescheduled", now_at, 2))
    await until_reminded(notifiers.mail, moved)
    assert datetime.now(UTC) >= now_at.reminder_at  # at its new time, not the old
    (reminder,) = reminders_to(notifiers.mail, moved.professional.email)
    tokyo = later.astimezone(ZoneInfo("Asia/Tokyo"))
    assert f"{tokyo:%H:%M}" in reminder.get_body(("plain",)).get_content()
    assert reminders_to(notifiers.mail, cancelled.professional.email) == []  # due before the moved one: none came
