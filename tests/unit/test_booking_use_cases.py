"""The booking service's use cases against fakes of its unit of work, its record and the capacity
port (``booking_fakes``): the rules of booking, cancelling and moving bookings, in milliseconds.
The same rules on real PostgreSQL and Redis: tests/integration/test_capacity_owner.py and
test_booking_service.py."""

import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from booking.adapters.capacity import Earlier, Full, Limited, Taken
from booking.api import BookingIn
from booking.owner import CapacityOwner
from booking.service import STALE_RETRIES, BookingService
from booking.waitlist import Offers
from common.auth import Identity
from common.contracts import ShiftStatus
from common.errors import Problem
from common.events import BookingCancelled, BookingConfirmed, BookingNeedsReschedule, BookingReassigned, ShiftUpdated
from common.roles import Role
from tests.factories import event_data, professional, shift_data
from tests.unit.booking_fakes import FakeCapacity, FakeDatabase

UTC = ZoneInfo("UTC")


class World:
    """An event tomorrow, Ada working 09:00-10:00 with ``capacity``, Bob too when asked."""

    def __init__(self, capacity: int = 1, with_bob: bool = False) -> None:
        self.event = event_data()
        self.nine = datetime.combine(self.event.start_date, time(9), UTC)
        self.ada, self.bob = professional("Ada"), professional("Bob")
        self.shift = shift_data(self.event, self.ada, self.nine, self.nine + timedelta(hours=1), capacity=capacity)
        self.db, self.store = FakeDatabase(), FakeCapacity()
        self.db.tables.definitions[self.event.id] = (1, self.event)
        self.db.tables.shifts[self.shift.id] = (1, self.shift)
        if with_bob:
            bob_shift = shift_data(self.event, self.bob, self.nine, self.nine + timedelta(hours=1))
            self.db.tables.shifts[bob_shift.id] = (1, bob_shift)
        self.store.define(self.event)
        units = self.db.units_of_work()
        self.service = BookingService(units, self.store, hold_seconds=30, deadline_seconds=3.5, attempts_per_minute=0)
        self.owner = CapacityOwner(units, self.store, Offers(units, self.store))
        self.client = Identity(id=uuid.uuid4(), role=Role.CLIENT, name="Casey", timezone="Europe/Paris")

    def request(self, start: datetime | None = None) -> BookingIn:
        return BookingIn(event_id=self.event.id, start=start or self.nine)

    def taken_by(self, pro, unit: int = 1) -> Taken:
        return Taken(pro, unit, {str(pro.id): 0})

    async def book(self, key: str | None = None, unit: int = 1):
        self.store.takes.append(self.taken_by(self.ada, unit))
        return await self.service.book(self.client, self.request(), key)

    def published(self) -> list[type]:
        return [type(e) for e in self.db.tables.outbox]


async def problem_of(call) -> Problem:
    with pytest.raises(Problem) as raised:
        await call
    return raised.value


# -- booking ----------------------------------------------------------------------------------


async def test_a_booking_is_committed_with_its_event_and_confirmed_in_the_store():
    w = World()
    booking, created = await w.book(key="k1")
    assert created and booking.professional.id == w.ada.id and booking.status.value == "confirmed"
    row = w.db.tables.bookings[booking.id]
    assert (row.unit, row.idempotency_key, row.client_id) == (1, "k1", w.client.id)
    assert w.published() == [BookingConfirmed] and w.db.tables.outbox[0].data == booking
    assert w.store.confirmed == [booking.id] and w.store.released == []
    assert w.db.wakes == 1  # the relay is told at once


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [
        ("full", 409, "slot_unavailable"),
        (Limited(retry_after=17), 429, "rate_limited"),
        ("someone else's body", 422, "idempotency_key_reused"),
    ],
)
async def test_a_refusal_never_opens_a_unit_of_work(answer, status, code):
    w = World()
    if answer == "full":
        slots = w.event.schedule().slots_on_local_day(w.event.start_date, UTC)
        answer = Full(slots, tuple(1 if s.start == w.nine + timedelta(hours=2) else 0 for s in slots))
    elif answer == "someone else's body":
        answer = Earlier("done", uuid.uuid4(), fingerprint="not this request's", data=None)
    w.store.takes.append(answer)
    problem = await problem_of(w.service.book(w.client, w.request(), "k1"))
    assert (problem.status, problem.code) == (status, code)
    assert w.db.begun == 0 and w.db.tables.bookings == {}
    if code == "slot_unavailable":  # the nearest slot still open, from the same step
        assert [s["start"] for s in problem.extensions["nearest_available"]] == [(w.nine + timedelta(hours=2)).isoformat()]
    if code == "rate_limited":
        assert problem.headers["Retry-After"] == "17"


async def test_a_replayed_key_answers_the_booking_it_made_without_the_database():
    w = World()
    first, _ = await w.book(key="k1")
    begun = w.db.begun
    w.store.takes.append(Earlier("done", first.id, _fingerprint(w.request()), first.model_dump_json()))
    again, created = await w.service.book(w.client, w.request(), "k1")
    assert (again, created) == (first, False)
    assert w.db.begun == begun and len(w.db.tables.bookings) == 1


async def test_a_unit_the_record_no_longer_gives_is_given_back_and_a_unit_taken_afresh():
    """Taken in Redis before the owner applied a shrink: the record's check refuses it at commit;
    its unit goes back and the booking takes again from the changed counters."""
    w = World(capacity=1)
    w.store.takes.append(w.taken_by(w.ada, 2))  # unit 2 of a capacity of 1: what the take saw before the shrink
    booking, created = await w.book(unit=1)  # the second take: unit 1
    assert created and list(w.db.tables.bookings) == [booking.id] and w.published() == [BookingConfirmed]
    [refused] = w.store.released
    assert refused != booking.id and w.store.confirmed == [booking.id]


async def test_a_refused_unit_whose_slot_is_full_by_then_is_a_409():
    w = World(capacity=1)
    w.store.takes.append(w.taken_by(w.ada, 2))
    slots = w.event.schedule().slots_on_local_day(w.event.start_date, UTC)
    w.store.takes.append(Full(slots, tuple(0 for _ in slots)))
    problem = await problem_of(w.service.book(w.client, w.request(), None))
    assert (problem.status, problem.code) == (409, "slot_unavailable")
    assert w.db.tables.bookings == {} and w.db.tables.outbox == [] and len(w.store.released) == 1


async def test_a_unit_refused_at_every_commit_ends_in_a_503_each_unit_given_back():
    w = World(capacity=1)
    w.store.takes.extend(w.taken_by(w.ada, 2) for _ in range(STALE_RETRIES))
    problem = await problem_of(w.service.book(w.client, w.request(), None))
    assert (problem.status, problem.code) == (503, "try_again")
    assert w.db.tables.bookings == {} and w.db.tables.outbox == []
    assert len(set(w.store.released)) == STALE_RETRIES and w.store.confirmed == []


async def test_a_booking_past_its_deadline_is_rolled_back_before_commit(monkeypatch):
    w = World()
    w.service._deadline_seconds = -1  # already late when COMMIT would be sent
    problem = await problem_of(w.book())
    assert (problem.status, problem.code) == (503, "try_again")
    assert w.db.tables.bookings == {} and len(w.store.released) == 1


@pytest.mark.parametrize("lost", ["before", "after"])
async def test_a_lost_commit_answer_is_settled_by_the_record(lost):
    w = World()
    w.db.lose_commit_answer = lost
    if lost == "after":  # committed: answered as made, the unit kept
        booking, created = await w.book()
        assert created and booking.id in w.db.tables.bookings
        assert w.store.released == [] and w.store.confirmed == [booking.id]
    else:  # not committed: refused, the unit given back
        problem = await problem_of(w.book())
        assert problem.status == 503 and w.db.tables.bookings == {}
        assert len(w.store.released) == 1


async def test_a_key_redis_forgot_is_caught_by_the_record_and_answers_the_first_booking():
    w = World(capacity=2)
    first, _ = await w.book(key="k1")
    second, created = await w.book(key="k1", unit=2)  # Redis lost the key: a second unit was taken
    assert (second, created) == (first, False)
    assert len(w.db.tables.bookings) == 1 and len(w.store.released) == 1  # the second unit went back


# -- cancelling ---------------------------------------------------------------------------------


async def test_a_cancel_publishes_once_and_gives_the_unit_back_after_the_commit():
    w = World()
    booking, _ = await w.book()
    cancelled = await w.service.cancel(w.client, booking.id)
    assert cancelled.status.value == "cancelled"
    assert w.published() == [BookingConfirmed, BookingCancelled] and w.db.tables.outbox[-1].sequence == 2
    assert w.store.released == [booking.id]
    again = await w.service.cancel(w.client, booking.id)  # harmless
    assert again.status.value == "cancelled" and len(w.db.tables.outbox) == 2 and w.store.released == [booking.id]


@pytest.mark.parametrize("who", [Role.CLIENT, Role.PROFESSIONAL])
async def test_nobody_else_cancels_or_sees_a_booking(who):
    w = World()
    booking, _ = await w.book()
    stranger = Identity(id=uuid.uuid4() if who is Role.CLIENT else w.ada.id, role=who, name="Stranger")
    assert (await problem_of(w.service.cancel(stranger, booking.id))).status == 404
    assert w.db.tables.bookings[booking.id].status == "confirmed" and w.store.released == []
    if who is Role.CLIENT:
        assert (await problem_of(w.service.get_booking(stranger, booking.id))).status == 404
    else:  # the professional it is assigned to sees it
        assert (await w.service.get_booking(stranger, booking.id))[0].id == booking.id


# -- the capacity owner -----------------------------------------------------------------------


async def shrink_ada(w: World) -> None:
    """Ada's shift goes from capacity 2 to 1 under two bookings."""
    smaller = w.shift.model_copy(update={"capacity": 1})
    await w.owner.apply_shift_change(ShiftUpdated.of(w.shift.id, 2, smaller))


@pytest.mark.parametrize(
    ("placed", "published", "status"),
    [("ada", [], "confirmed"), ("bob", [BookingReassigned], "confirmed"), (None, [BookingNeedsReschedule], "needs_reschedule")],
)
async def test_a_shrunk_shift_moves_the_booking_beyond_it_or_flags_it(placed, published, status):
    w = World(capacity=2, with_bob=True)
    await w.book(unit=1)
    beyond, _ = await w.book(unit=2)
    pro = {"ada": w.ada, "bob": w.bob, None: None}[placed]
    w.store.relocations[beyond.id] = w.taken_by(pro, unit=1) if pro else None
    before = len(w.db.tables.outbox)
    await shrink_ada(w)
    row = w.db.tables.bookings[beyond.id]
    assert w.published()[before:] == published and row.status == status
    if placed == "bob":
        assert (row.professional_id, row.unit, row.sequence) == (w.bob.id, 1, 2)
        assert w.db.tables.outbox[-1].data.professional.name == "Bob"
    report = await w.owner.audit(w.event.id)
    assert report.clean, report.beyond


async def test_an_older_shift_change_changes_nothing():
    w = World(capacity=2)
    await shrink_ada(w)
    stale = w.shift.model_copy(update={"status": ShiftStatus.CANCELLED})
    await w.owner.apply_shift_change(ShiftUpdated.of(w.shift.id, 1, stale))  # sequence 1 < 2
    assert w.db.tables.shifts[w.shift.id] == (2, w.shift.model_copy(update={"capacity": 1}))


def _fingerprint(request: BookingIn) -> str:
    from booking.service import fingerprint

    return fingerprint(request)
