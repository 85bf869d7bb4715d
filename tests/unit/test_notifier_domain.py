"""Which mails a booking event causes, to whom, and how they read, without SMTP or a database."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from common.calendar import booking_uid
from common.contracts import BookingData, BookingStatus, MovedBookingData, Person, RescheduledBookingData
from common.events import BookingCancelled, BookingConfirmed, BookingNeedsReschedule, BookingReassigned, BookingRescheduled
from common.roles import Role
from common.settings import ServiceSettings
from notifier.domain import Letterhead, notices_for
from notifier.settings import Settings


def booking(client_email: str | None = "casey@test.example") -> BookingData:
    return BookingData(
        id=uuid.uuid4(),
        event_id=uuid.uuid4(),
        event_name="Vaccinations",
        start=datetime(2030, 3, 31, 8, 0, tzinfo=UTC),
        end=datetime(2030, 3, 31, 8, 30, tzinfo=UTC),
        status=BookingStatus.CONFIRMED,
        client=Person(id=uuid.uuid4(), name="Casey", email=client_email, timezone="America/New_York"),
        professional=Person(id=uuid.uuid4(), name="Dr. Mira", email="mira@test.example", timezone="Asia/Tokyo"),
    )


def test_a_confirmation_goes_to_the_client_and_the_professional_each_in_their_own_time():
    data = booking()
    client, professional = notices_for(BookingConfirmed.of(data.id, 1, data))
    assert (client.role, client.reader.name, professional.role) == (Role.CLIENT, "Casey", Role.PROFESSIONAL)
    assert client.subject == "Your appointment is confirmed" and professional.subject == "New appointment"
    assert client.when == "Sunday 31 March 2030, 04:00–04:30 (America/New_York)"
    assert professional.when == "Sunday 31 March 2030, 17:00–17:30 (Asia/Tokyo)"
    assert client.kind == "booking.confirmed" and not client.cancels_the_appointment


def test_a_client_who_gave_no_address_gets_no_mail_and_the_professional_still_does():
    data = booking(client_email=None)
    assert [n.role for n in notices_for(BookingConfirmed.of(data.id, 1, data))] == [Role.PROFESSIONAL]


def test_a_cancel_or_a_lost_slot_removes_the_calendar_entry_and_a_reassignment_does_not():
    data = booking()
    for event, cancels in ((BookingCancelled, True), (BookingNeedsReschedule, True)):
        notices = notices_for(event.of(data.id, 2, data))
        assert {n.cancels_the_appointment for n in notices} == {cancels}, event.routing_key
    taken_over = MovedBookingData(**booking().model_dump(), previous_professional=Person(id=uuid.uuid4(), name="Gone"))
    assert {n.cancels_the_appointment for n in notices_for(BookingReassigned.of(data.id, 2, taken_over))} == {False}


def moved(data: BookingData, by_hours: int, to: Person | None = None) -> RescheduledBookingData:
    shift = timedelta(hours=by_hours)
    now = data.model_dump() | {"start": data.start + shift, "end": data.end + shift, "professional": to or data.professional}
    return RescheduledBookingData(
        **now, previous_start=data.start, previous_end=data.end, previous_professional=data.professional
    )


def test_a_reschedule_with_the_same_professional_updates_both_entries_to_the_new_time():
    data = moved(booking(), 2)
    client, professional = notices_for(BookingRescheduled.of(data.id, 2, data))
    assert client.subject == "Your appointment has moved" and professional.subject == "Appointment moved"
    assert not client.cancels_the_appointment and not professional.cancels_the_appointment
    assert client.when == "Sunday 31 March 2030, 06:00–06:30 (America/New_York)"
    assert client.previously == "Sunday 31 March 2030, 04:00–04:30 (America/New_York)"


def test_a_reschedule_to_another_professional_cancels_the_entry_of_the_one_who_lost_it():
    before = booking()
    other = Person(id=uuid.uuid4(), name="Dr. Ade", email="ade@test.example", timezone="Europe/Lagos")
    data = moved(before, 3, to=other)
    client, gained, lost = notices_for(BookingRescheduled.of(data.id, 2, data))
    assert (gained.reader, gained.subject, gained.cancels_the_appointment) == (other, "New appointment", False)
    assert (lost.reader, lost.cancels_the_appointment) == (before.professional, True)
    assert lost.subject == "Appointment moved to another professional"
    assert (lost.start, lost.end) == (before.start, before.end)  # the entry it cancels is the old one
    assert (gained.start, client.start) == (data.start, data.start)


def test_a_reassignment_cancels_the_entry_of_the_professional_who_lost_it_at_the_same_time():
    before = booking()
    other = Person(id=uuid.uuid4(), name="Dr. Ade", email="ade@test.example", timezone="Europe/Lagos")
    data = MovedBookingData(**before.model_dump() | {"professional": other}, previous_professional=before.professional)
    client, gained, lost = notices_for(BookingReassigned.of(data.id, 2, data))
    assert (client.subject, client.cancels_the_appointment) == ("Your appointment has a new professional", False)
    assert (gained.reader, gained.subject, gained.cancels_the_appointment) == (other, "New appointment", False)
    assert (lost.reader, lost.subject, lost.cancels_the_appointment) == (
        before.professional,
        "Appointment given to another professional",
        True,
    )
    assert (lost.start, lost.end) == (before.start, before.end)


def test_message_ids_and_invite_uids_end_in_the_mail_domain():
    event_id, booking_id = uuid.uuid4(), uuid.uuid4()
    letterhead = Letterhead("Clinic <no-reply@mail.clinic.example>", "Clinic <desk@clinic.example>", "ids.clinic.example")
    assert letterhead.message_id(event_id, "a@b.example").endswith("@ids.clinic.example>")
    assert letterhead.message_id(event_id, "a@b.example") == letterhead.message_id(event_id, "a@b.example")
    assert letterhead.message_id(event_id, "a@b.example") != letterhead.message_id(event_id, "c@b.example")
    assert (
        letterhead.invite_uid(booking_id) == f"{booking_id}@ids.clinic.example" == booking_uid(booking_id, "ids.clinic.example")
    )


def test_a_mail_domain_that_is_not_a_full_one_is_refused_at_start():
    for domain in ("appointments", "localhost", ".example."):
        with pytest.raises(ValidationError, match="not a full domain"):
            Settings(mail_domain=domain)
        with pytest.raises(ValidationError, match="not a full domain"):
            ServiceSettings(mail_domain=domain)  # every service: the booking service's feeds carry the same UIDs
    assert Settings().letterhead.domain == "appointments.example"
