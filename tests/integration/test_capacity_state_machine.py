"""Random histories against the capacity owner and the booking path, on the real PostgreSQL and
Redis: bookings, retries with the same key, cancels, shift changes, shorter hours and blackouts,
the change consumer paused and resumed, redelivered messages, holds left by a crashed booking,
Redis flushed (rebuilt at once, by the next change, or by the owner's watch), holds expired by the
owner. After every step the record's audit is clean, every 201 is in the
record, and no booking holds two units; once settled, the counters equal the record.

``STATE_MACHINE_EXAMPLES`` (default 200, 30 steps each) sets the size; ``make soak`` runs more.
"""

import asyncio
import json
import os
import random
import uuid
from collections import Counter
from datetime import datetime, time, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from booking.adapters.counters import EventRecord, UnitInUse, differences, event_counters, holds_in
from booking.adapters.repository import Repository
from booking.api import BookingIn, RescheduleIn, WaitlistIn
from common.auth import Identity
from common.contracts import OneOffBlackoutData, ShiftStatus
from common.errors import Problem
from common.roles import Role
from tests.factories import event_data, message, professional, shift_data
from tests.integration.booking_parts import booking_parts

EXAMPLES = int(os.environ.get("STATE_MACHINE_EXAMPLES", "200"))
SLOTS = 4  # 09:00 to 11:00, half an hour each
PROFESSIONALS = [professional(name) for name in ("Ada", "Bob", "Cai")]
CLIENTS = [Identity(id=uuid.uuid4(), role=Role.CLIENT, name=f"Client {i}") for i in range(4)]
ADMIN = Identity(id=uuid.uuid4(), role=Role.ADMIN, name="Admin")


class Harness:
    """One event loop and one set of booking parts for every example (each example its own event)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, parts) -> None:
        self.loop, self.parts = loop, parts

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)


HARNESS: Harness | None = None


class CapacityHistory(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.h = HARNESS
        self.parts = self.h.parts
        self.event = event_data(days=1, opens=time(9), closes=time(11))
        self.zone = self.event.schedule().zone
        self.nine = datetime.combine(self.event.start_date, time(9), self.zone)
        self.event_sequence = 1
        self.published = [message("event.created", self.event.id, 1, self.event)]
        self.shifts = {}  # professional -> its shift's newest state and sequence
        self.pending: list = []  # published, not delivered to the owner yet (consumer paused)
        self.paused = False
        self.made: dict[uuid.UUID, Identity] = {}  # every booking answered 201, with its client
        self.keys: dict[tuple[uuid.UUID, str], tuple[uuid.UUID, BookingIn]] = {}
        self.entries: dict[uuid.UUID, Identity] = {}  # every place taken on a waitlist, with its client
        self.h.run(self.parts.apply(self.published[0]))
        for pro in PROFESSIONALS[:2]:
            self._publish_shift(pro, capacity=1, first=0, slots=SLOTS)

    # -- helpers ------------------------------------------------------------------------------

    def _deliver(self, each) -> None:
        if self.paused:
            self.pending.append(each)
        else:
            self.h.run(self.parts.apply(each))

    def _publish_shift(self, pro, capacity: int, first: int, slots: int, status=ShiftStatus.ACTIVE) -> None:
        known = self.shifts.get(pro.id)
        sequence = known[1] + 1 if known else 1
        shift_id = known[0].id if known else uuid.uuid4()
        start = self.nine + timedelta(minutes=30 * first)
        shift = shift_data(self.event, pro, start, start + timedelta(minutes=30 * slots), capacity, status, shift_id)
        self.shifts[pro.id] = (shift, sequence)
        kind = "shift.cancelled" if status is ShiftStatus.CANCELLED else ("shift.updated" if known else "shift.created")
        each = message(kind, shift.id, sequence, shift)
        self.published.append(each)
        self._deliver(each)

    def _publish_event(self, event) -> None:
        self.event_sequence += 1
        self.event = event
        each = message("event.updated", event.id, self.event_sequence, event)
        self.published.append(each)
        self._deliver(each)

    def _slot(self, index: int) -> datetime:
        return self.nine + timedelta(minutes=30 * index)

    async def _book(self, client: Identity, request: BookingIn, key: str | None):
        try:
            return await self.parts.service.book(client, request, key)
        except Problem as problem:
            assert problem.status in (409, 422, 503), problem.to_dict()
            return None

    # -- rules -------------------------------------------------------------------------------

    @rule(slot=st.integers(0, SLOTS - 1), who=st.integers(0, len(CLIENTS) - 1), keyed=st.booleans())
    def book(self, slot: int, who: int, keyed: bool) -> None:
        client = CLIENTS[who]
        request = BookingIn(event_id=self.event.id, start=self._slot(slot))
        key = uuid.uuid4().hex if keyed else None
        answer = self.h.run(self._book(client, request, key))
        if answer is not None:
            booking, created = answer
            assert created
            self.made[booking.id] = client
            if key:
                self.keys[(client.id, key)] = (booking.id, request)

    @rule(data=st.data())
    def retry_with_the_same_key(self, data) -> None:
        if not self.keys:
            return
        # In the order they were made: ids and keys are random, so an order by them would make the
        # same choice pick another booking when hypothesis replays a history.
        (client_id, key), (booking_id, request) = data.draw(st.sampled_from(list(self.keys.items())))
        client = next(c for c in CLIENTS if c.id == client_id)
        answer = self.h.run(self._book(client, request, key))
        if answer is not None:  # 503 is allowed (e.g. while rebuilt); never a second booking
            assert answer[0].id == booking_id and answer[1] is False

    @rule(data=st.data())
    def cancel(self, data) -> None:
        if not self.made:
            return
        booking_id = data.draw(st.sampled_from(list(self.made)))  # in the order made, as above
        who = data.draw(st.sampled_from([self.made[booking_id], ADMIN]))
        cancelled = self.h.run(self.parts.service.cancel(who, booking_id))
        assert cancelled.status.value == "cancelled"

    @rule(data=st.data(), slot=st.integers(0, SLOTS - 1), keyed=st.booleans())
    def reschedule(self, data, slot: int, keyed: bool) -> None:
        if not self.made:
            return
        booking_id = data.draw(st.sampled_from(list(self.made)))  # in the order made, as above
        who = data.draw(st.sampled_from([self.made[booking_id], ADMIN]))
        key = uuid.uuid4().hex if keyed else None
        request = RescheduleIn(start=self._slot(slot))
        try:
            moved = self.h.run(self.parts.service.reschedule(who, booking_id, request, key))
        except Problem as problem:  # full, blocked, cancelled, outside the hours now: nothing changed
            assert problem.status in (409, 422, 503), problem.to_dict()
            return
        assert (moved.id, moved.start, moved.status.value) == (booking_id, self._slot(slot), "confirmed")
        if key:  # the same key again: the same move, not another
            again = self.h.run(self.parts.service.reschedule(who, booking_id, request, key))
            assert (again.start, again.professional.id) == (moved.start, moved.professional.id)

    @rule(slot=st.integers(0, SLOTS - 1), who=st.integers(0, len(CLIENTS) - 1))
    def fill_the_slot_and_join_its_waitlist(self, slot: int, who: int) -> None:
        """Others book the slot until it is full (a slot with room has no waitlist), then one waits."""
        for other in CLIENTS[:3]:
            answer = self.h.run(self._book(other, BookingIn(event_id=self.event.id, start=self._slot(slot)), None))
            if answer is None:
                break
            self.made[answer[0].id] = other
        request = WaitlistIn(event_id=self.event.id, start=self._slot(slot))
        try:
            entry, _ = self.h.run(self.parts.waitlist.join(CLIENTS[who], request))
        except Problem as problem:  # the slot has room (book it), is blocked, or the event is changing
            assert problem.status in (409, 422, 503), problem.to_dict()
            return
        self.entries[uuid.UUID(entry["id"])] = CLIENTS[who]

    @rule(data=st.data())
    def leave_the_waitlist(self, data) -> None:
        if not self.entries:
            return
        entry_id = data.draw(st.sampled_from(list(self.entries)))  # in the order joined
        try:
            self.h.run(self.parts.waitlist.withdraw(self.entries[entry_id], entry_id))
        except Problem as problem:  # booked already
            assert (problem.status, problem.code) == (409, "entry_booked"), problem.to_dict()

    @rule()
    def cancel_where_someone_waits(self) -> None:
        """The earliest booking of a slot with a waitlist is cancelled: its unit goes to the first
        waiter. (Chosen without a draw: which bookings exist depends on the random assignment.)"""
        waited = self.h.run(
            self.parts.pool.fetch(
                "SELECT b.id FROM bookings b JOIN waitlist w ON w.event_id = b.event_id AND w.slot_start = b.slot_start "
                "WHERE b.event_id = $1 AND b.status = 'confirmed' AND w.status = 'waiting'",
                self.event.id,
            )
        )
        found = {r["id"] for r in waited}
        booking_id = next((b for b in self.made if b in found), None)
        if booking_id is not None:
            self.h.run(self.parts.service.cancel(ADMIN, booking_id))

    @rule()
    def offers_are_made(self) -> None:
        """What the owner's watch does every few seconds: freed units of waited-for slots offered."""
        self.h.run(self.parts.offers.make(self.event.id, heal=True))

    @rule()
    def offers_run_out(self) -> None:
        async def run_out():
            keys = self.parts.store.keys(self.event.id)
            for hold in await self.parts.store.holds(self.event.id):
                if hold.offer:
                    await self.parts.store._redis.zadd(keys.hold_expiry, {str(hold.taken.booking_id): 0})
            await self.parts.owner.expire_holds()

        self.h.run(run_out())

    @rule(offered=st.booleans())
    def claim_an_offer(self, offered: bool) -> None:
        """The earliest waiter holding an offer claims it, or (``offered`` False) the earliest
        waiter at all (nothing to claim, mostly). Chosen without a draw, as above."""
        if offered:
            rows = self.h.run(
                self.parts.pool.fetch("SELECT id FROM waitlist WHERE event_id = $1 AND status = 'offered'", self.event.id)
            )
            holding = {r["id"] for r in rows}
            entry_id = next((e for e in self.entries if e in holding), None)
        else:
            entry_id = next(iter(self.entries), None)
        if entry_id is None:
            return
        client = self.entries[entry_id]
        try:
            booking, _ = self.h.run(self.parts.waitlist.claim(client, entry_id, None))
        except Problem as problem:  # nothing offered (yet, or any more), or the event is changing
            assert problem.status in (409, 503), problem.to_dict()
            return
        assert booking.id == entry_id
        self.made[booking.id] = client

    @rule(
        pro=st.integers(0, len(PROFESSIONALS) - 1),
        capacity=st.integers(1, 3),
        first=st.integers(0, SLOTS - 1),
        slots=st.integers(1, SLOTS),
    )
    def change_shift(self, pro: int, capacity: int, first: int, slots: int) -> None:
        self._publish_shift(PROFESSIONALS[pro], capacity, first, min(slots, SLOTS - first))

    @rule(pro=st.integers(0, len(PROFESSIONALS) - 1))
    def cancel_shift(self, pro: int) -> None:
        known = self.shifts.get(PROFESSIONALS[pro].id)
        if known and known[0].status is ShiftStatus.ACTIVE:
            s = known[0]
            first = int((s.start - self.nine).total_seconds() // 1800)
            slots = int((s.end - s.start).total_seconds() // 1800)
            self._publish_shift(PROFESSIONALS[pro], s.capacity, first, slots, ShiftStatus.CANCELLED)

    @rule(slot=st.integers(0, SLOTS - 1))
    def black_out(self, slot: int) -> None:
        window = OneOffBlackoutData(id=uuid.uuid4(), start=self._slot(slot), end=self._slot(slot + 1))
        self._publish_event(self.event.model_copy(update={"blackouts": [*self.event.blackouts, window]}))

    @rule()
    def shorten_hours(self) -> None:
        self._publish_event(self.event.model_copy(update={"closes_at": time(10, 30)}))

    @rule()
    def pause_the_consumer(self) -> None:
        self.paused = True

    @rule(shuffle=st.booleans())
    def resume_the_consumer(self, shuffle: bool) -> None:
        self.paused = False
        pending, self.pending = self.pending, []
        if shuffle:  # delivery order across aggregates is not guaranteed; within one, sequence wins
            random.Random(len(pending)).shuffle(pending)
        for each in pending:
            self.h.run(self.parts.apply(each))

    @rule(data=st.data())
    def redeliver(self, data) -> None:
        delivered = [m for m in self.published if m not in self.pending]
        if not self.paused:
            self.h.run(self.parts.apply(data.draw(st.sampled_from(delivered))))

    @rule(slot=st.integers(0, SLOTS - 1))
    def a_booking_process_dies_after_its_take(self, slot: int) -> None:
        async def take_and_die():
            known = await self.parts.store.event(self.event.id)
            target = known.schedule.slot_starting_at(self._slot(slot)) if known else None
            if target is not None:
                await self.parts.store.take(known, target, random.random(), uuid.uuid4(), hold_seconds=0.001)

        self.h.run(take_and_die())

    async def _flush(self) -> None:
        redis = self.parts.store._redis
        keys = [k async for k in redis.scan_iter(match=f"{self.parts.store.keys(self.event.id).event[:-5]}*")]
        if keys:
            await redis.delete(*keys)

    @rule()
    def redis_is_flushed_and_rebuilt(self) -> None:
        async def flush_and_rebuild():
            await self._flush()
            await self.parts.owner.rebuild(self.event.id)

        self.h.run(flush_and_rebuild())

    @rule()
    def redis_is_flushed(self) -> None:
        """Left so: bookings are asked to try again, and the next change builds the event whole."""
        self.h.run(self._flush())

    @rule()
    def settle(self) -> None:
        """Resume; the owner's watch rebuilds what is missing and expires what crashed takes left;
        the counters equal the record."""
        self.resume_the_consumer(False)

        async def compare():
            await self.parts.owner.rebuild_missing()
            await self.parts.owner.expire_holds()
            record = await self._record()
            live = await self.parts.store.raw(self.event.id)
            holds = holds_in(live)
            async with self.parts.pool.acquire() as connection:
                waiting = await Repository(connection).waiting(self.event.id)
            held = {h.taken.booking_id for h in holds}  # an entry holding an offer waits no more
            waiting = {slot: [e for e in entries if e not in held] for slot, entries in waiting.items()}
            built = event_counters(record.sequence, record.event, record.shifts, await self._units(), holds, waiting)
            return differences(live, built)

        assert self.h.run(compare()) == {}

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def the_record_is_clean_and_holds_every_201(self) -> None:
        async def check():
            audit = await self.parts.owner.audit(self.event.id)
            assert audit.clean, audit.beyond
            rows = await self.parts.pool.fetch("SELECT id FROM bookings WHERE event_id = $1", self.event.id)
            assert set(self.made) <= {r["id"] for r in rows}

        self.h.run(check())

    @invariant()
    def no_booking_holds_two_units(self) -> None:
        async def held():
            alloc = await self.parts.store._redis.hgetall(self.parts.store.keys(self.event.id).alloc)
            return Counter(b for raw in alloc.values() for units in json.loads(raw)["u"].values() for b in units.values())

        assert all(n == 1 for n in self.h.run(held()).values())

    # -- the record, as the shifts service published it ---------------------------------------

    async def _record(self) -> EventRecord:
        """Everything the shifts service published (once settled, the owner's record is the same)."""
        return EventRecord(self.event_sequence, self.event, [(seq, shift) for shift, seq in self.shifts.values()])

    async def _units(self) -> list[UnitInUse]:
        return await self.parts.confirmed_units(self.event.id)

    def teardown(self) -> None:
        if hasattr(self, "h"):
            self.settle()


def test_random_histories_never_overbook_lose_or_double_a_booking(servers, key_prefix, redis_kind):
    global HARNESS
    loop = asyncio.new_event_loop()
    try:
        redis = redis_kind.client()
        context = booking_parts(servers, redis, key_prefix)
        parts = loop.run_until_complete(context.__aenter__())
        HARNESS = Harness(loop, parts)
        try:
            run_state_machine_as_test(
                CapacityHistory,
                settings=settings(
                    max_examples=EXAMPLES,
                    stateful_step_count=30,
                    deadline=None,
                    suppress_health_check=list(HealthCheck),
                    derandomize=os.environ.get("STATE_MACHINE_SEED") is None,
                ),
            )
        finally:
            loop.run_until_complete(context.__aexit__(None, None, None))
            loop.run_until_complete(redis.aclose())
    finally:
        HARNESS = None
        loop.close()
