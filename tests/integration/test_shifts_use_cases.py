"""The shifts service's use cases in this process, on a database of their own through the real unit
of work (no services running): what each publishes, what it refuses, and that a refusal writes
nothing. A few milliseconds each."""

import uuid
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from common.auth import Identity
from common.contracts import Person
from common.db import session_factory
from common.errors import Problem
from common.events import (
    BlackoutCreated,
    BlackoutDeleted,
    EventCreated,
    EventUpdated,
    ProfessionalCreated,
    ProfessionalUpdated,
    ShiftCancelled,
    ShiftCreated,
)
from common.roles import Role
from shifts.adapters.db import OUTBOX, EventRow, ProfessionalRow
from shifts.api import BlackoutIn, EventIn, EventPatch, ShiftIn, ShiftPatch
from shifts.service import ShiftsService
from tests.integration.use_cases import migrated_database, recording_units_of_work

UTC = ZoneInfo("UTC")
DAY = date.today() + timedelta(days=10)
ADMIN = Identity(id=uuid.uuid4(), role=Role.ADMIN, name="Admin")


@pytest.fixture(scope="module")
async def database(servers):
    engine = await migrated_database(servers, "shifts")
    yield engine
    await engine.dispose()


@pytest.fixture
def shifts(database):
    """The service, the list of events its committed units of work published, and sessions to look."""
    units_of_work, published = recording_units_of_work(database, OUTBOX)
    return ShiftsService(units_of_work, professional_wait_seconds=0.1), published, session_factory(database)


def at(hour: int, minute: int = 0) -> datetime:
    return datetime.combine(DAY, time(hour, minute), UTC)


def event_spec(**changes) -> EventIn:
    fields = dict(
        name="Clinic", timezone="UTC", start_date=DAY, end_date=DAY, opens_at="09:00", closes_at="12:00", slot_minutes=30
    )
    return EventIn(**(fields | changes))


def professional() -> Identity:
    return Identity(id=uuid.uuid4(), role=Role.PROFESSIONAL, name="Dr. Own", email="own@test.example")


async def refused(call) -> Problem:
    with pytest.raises(Problem) as problem:
        await call
    return problem.value


async def test_an_event_and_its_blackouts_are_published_with_one_rising_sequence(shifts):
    service, published, _ = shifts
    event = await service.create_event(event_spec())
    blackout = await service.add_blackout(event.id, BlackoutIn(start_time="10:00", end_time="10:30", reason="coffee"))
    await service.delete_blackout(event.id, blackout.id)
    await service.update_event(event.id, EventPatch(closes_at="11:30"))
    assert [type(e) for e in published] == [EventCreated, BlackoutCreated, BlackoutDeleted, EventUpdated]
    assert [e.sequence for e in published] == [1, 2, 3, 4]
    assert published[1].data.blackout.id == blackout.id and [b.id for b in published[1].data.blackouts] == [blackout.id]
    assert published[2].data.blackouts == []


async def test_an_event_change_that_would_strand_a_shift_is_refused_and_writes_nothing(shifts):
    service, published, sessions = shifts
    event = await service.create_event(event_spec())
    pro = professional()
    await service.create_shift(pro, ShiftIn(event_id=event.id, start=at(11), end=at(12)))
    before = len(published)
    problem = await refused(service.update_event(event.id, EventPatch(closes_at="11:00", name="Renamed")))
    assert (problem.status, problem.code) == (409, "shifts_outside_event")
    problem = await refused(service.update_event(event.id, EventPatch(slot_minutes=60)))
    assert (problem.status, problem.code) == (409, "event_has_shifts")
    async with sessions() as session:
        row = await session.get(EventRow, event.id)
        assert (row.name, row.closes_at, row.sequence) == ("Clinic", time(12), 1)  # nothing partial
    assert len(published) == before


async def test_a_professional_adds_only_their_own_shifts_and_never_two_at_once(shifts):
    service, published, _ = shifts
    event = await service.create_event(event_spec())
    pro = professional()
    shift = await service.create_shift(pro, ShiftIn(event_id=event.id, start=at(9), end=at(10), capacity=2))
    assert (shift.professional.name, shift.capacity, type(published[-1])) == ("Dr. Own", 2, ShiftCreated)
    someone_else = ShiftIn(event_id=event.id, start=at(10), end=at(11), professional_id=uuid.uuid4())
    assert (await refused(service.create_shift(pro, someone_else))).status == 403
    overlapping = ShiftIn(event_id=event.id, start=at(9, 30), end=at(10, 30))
    before = len(published)
    assert (await refused(service.create_shift(pro, overlapping))).code == "shift_overlap"
    assert len(published) == before
    stranger = professional()
    assert (await refused(service.change_shift(stranger, shift.id, ShiftPatch(capacity=1)))).status == 404
    assert (await refused(service.cancel_shift(stranger, shift.id))).status == 404


async def test_a_shift_cancelled_twice_is_published_once(shifts):
    service, published, _ = shifts
    event = await service.create_event(event_spec())
    pro = professional()
    shift = await service.create_shift(pro, ShiftIn(event_id=event.id, start=at(9), end=at(10)))
    await service.cancel_shift(pro, shift.id)
    again = await service.cancel_shift(pro, shift.id)
    assert again.status.value == "cancelled"
    assert [type(e) for e in published].count(ShiftCancelled) == 1
    assert (await refused(service.change_shift(pro, shift.id, ShiftPatch(capacity=3)))).code == "shift_cancelled"


async def test_the_directory_keeps_the_newest_announcement_and_a_token_never_overrides_it(shifts):
    service, _, sessions = shifts
    pro_id = uuid.uuid4()

    def announced(kind, sequence: int, name: str):
        return kind.of(pro_id, sequence, Person(id=pro_id, name=name, email="p@test.example"))

    await service.record_professional(announced(ProfessionalCreated, 1, "Dr. First"))
    await service.record_professional(announced(ProfessionalUpdated, 3, "Dr. Third"))
    await service.record_professional(announced(ProfessionalUpdated, 2, "Dr. Second"))  # late: ignored
    event = await service.create_event(event_spec())
    stale_token = Identity(id=pro_id, role=Role.PROFESSIONAL, name="Dr. First")
    shift = await service.create_shift(stale_token, ShiftIn(event_id=event.id, start=at(9), end=at(10)))
    assert shift.professional.name == "Dr. Third"
    async with sessions() as session:
        assert (await session.scalar(select(ProfessionalRow.sequence).where(ProfessionalRow.id == pro_id))) == 3


async def test_an_admins_shift_for_a_professional_never_announced_is_refused_after_a_short_wait(shifts):
    service, published, _ = shifts
    event = await service.create_event(event_spec())
    before = len(published)
    problem = await refused(
        service.create_shift(ADMIN, ShiftIn(event_id=event.id, start=at(9), end=at(10), professional_id=uuid.uuid4()))
    )
    assert (problem.status, problem.code) == (422, "unknown_professional")
    assert len(published) == before
