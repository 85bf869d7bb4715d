"""The capacity owner and the booking transaction, called directly on real PostgreSQL and Redis,
where the interleavings that matter can be made to happen: a change the owner has not applied
yet, a hold in flight, two changes at once, a COMMIT whose answer is lost, Redis gone at confirm."""

import asyncio
import uuid
from collections import Counter
from datetime import datetime, time, timedelta
from types import SimpleNamespace
from urllib.parse import urlsplit

import asyncpg
import pytest
from redis.asyncio.cluster import RedisCluster

from booking.adapters.repository import units_of_work
from booking.api import BookingIn
from booking.owner import CapacityOwner
from booking.service import booking_data
from booking.waitlist import Offers
from common.auth import Identity
from common.contracts import BookingStatus, DailyBlackoutData, ShiftStatus
from common.errors import Problem
from common.roles import Role
from tests.factories import event_data, message, professional, shift_data
from tests.integration.booking_parts import booking_parts
from tests.integration.helpers import decoded
from tests.integration.tcp_proxy import Cut, PostgresProxy


@pytest.fixture
def redis(redis_of_either_kind):
    """Every test here runs on one Redis server, and again on a Redis Cluster of three masters."""
    return redis_of_either_kind


def client(name: str = "Client") -> Identity:
    return Identity(id=uuid.uuid4(), role=Role.CLIENT, name=name)


async def setup_event(parts, *shifts_of, capacity: int = 1, hours: tuple[int, int] = (9, 10)):
    """An event tomorrow, and a shift of ``hours`` for each professional given, applied by the owner."""
    event = event_data()
    await parts.apply(message("event.created", event.id, 1, event))
    start = datetime.combine(event.start_date, time(hours[0]), event.schedule().zone)
    shifts = []
    for pro in shifts_of:
        shift = shift_data(event, pro, start, start.replace(hour=hours[1]), capacity=capacity)
        await parts.apply(message("shift.created", shift.id, 1, shift))
        shifts.append(shift)
    return event, start, shifts


async def record_of(parts, booking_id):
    return await parts.pool.fetchrow("SELECT * FROM bookings WHERE id = $1", booking_id)


async def outbox_types(parts) -> list[str]:
    """What the owner told the parties, in order (the bookings' own ``booking.confirmed`` left out)."""
    rows = await parts.pool.fetch("SELECT envelope->>'type' AS t FROM outbox ORDER BY created_at")
    return [r["t"] for r in rows if r["t"] != "booking.confirmed"]


async def test_refusals_never_reach_postgresql_and_a_booking_is_one_transaction_of_three_round_trips(servers, redis, key_prefix):
    upstream = urlsplit(servers.postgres_url)
    async with PostgresProxy(upstream.hostname, upstream.port or 5432) as proxy:
        async with booking_parts(servers, redis, key_prefix, via_port=proxy.port, attempts_per_minute=3) as parts:
            ada = professional("Ada")
            event = event_data(blackouts=[DailyBlackoutData(id=uuid.uuid4(), start_time=time(12), end_time=time(13))])
            await parts.apply(message("event.created", event.id, 1, event))
            start = datetime.combine(event.start_date, time(9), event.schedule().zone)
            shift = shift_data(event, ada, start, start.replace(hour=13), capacity=1)
            await parts.apply(message("shift.created", shift.id, 1, shift))
            book = parts.service.book
            someone = client()
            warm_up, _ = await book(someone, BookingIn(event_id=event.id, start=start + timedelta(hours=1)), None)

            def counted():
                proxy.reset()
                return proxy

            first = client("First")
            counted()
            made, created = await book(first, BookingIn(event_id=event.id, start=start), "key-1")
            assert created and proxy.round_trips == 3, proxy.statements  # BEGIN+lock, booking+outbox, COMMIT
            eager = client("Eager")
            for _ in range(3):  # the attempts this client may make this minute, refused as full
                with pytest.raises(Problem, match="fully booked"):
                    await book(eager, BookingIn(event_id=event.id, start=start), None)

            refusals = {
                "over its attempts": (eager, BookingIn(event_id=event.id, start=start + timedelta(hours=2)), None, 429),
                "slot full": (client(), BookingIn(event_id=event.id, start=start), "other-key", 409),
                "slot blocked": (client(), BookingIn(event_id=event.id, start=start.replace(hour=12)), None, 409),
                "key replayed": (first, BookingIn(event_id=event.id, start=start), "key-1", 200),
                "key reused with another body": (
                    first,
                    BookingIn(event_id=event.id, start=start + timedelta(minutes=30)),
                    "key-1",
                    422,
                ),
            }
            for name, (who, request, key, status) in refusals.items():
                counted()
                try:
                    booking, created = await book(who, request, key)
                    answer = 201 if created else 200
                    assert booking.id == made.id
                except Problem as problem:
                    answer = problem.status
                assert (name, answer, proxy.round_trips, proxy.statements) == (name, status, 0, [])
            assert warm_up.id != made.id


async def test_a_booking_the_owner_had_not_seen_the_shift_change_for_is_moved_by_it_or_flagged(servers, redis, key_prefix):
    """The story of the capacity-owner issue: the change is committed in the shifts service, not yet
    applied by the owner (a paused consumer), and a client books; when the change arrives, the
    booking is moved to a colleague with room, or, with nobody, kept and flagged."""
    async with booking_parts(servers, redis, key_prefix) as parts:
        ada, bob = professional("Ada"), professional("Bob")
        event, start, (ada_shift, bob_shift) = await setup_event(parts, ada, bob)
        first, _ = await parts.service.book(client(), BookingIn(event_id=event.id, start=start), None)
        second, _ = await parts.service.book(client(), BookingIn(event_id=event.id, start=start), None)
        on_ada = first if first.professional.id == ada.id else second
        on_bob = second if on_ada is first else first
        # Bob's shift is cancelled: nobody else has room, so his booking is kept and flagged.
        await parts.apply(
            message("shift.cancelled", bob_shift.id, 2, bob_shift.model_copy(update={"status": ShiftStatus.CANCELLED}))
        )
        assert (await record_of(parts, on_bob.id))["status"] == BookingStatus.NEEDS_RESCHEDULE.value
        # Cai starts; then Ada's shift shrinks to nothing at 9:00: her booking moves to Cai.
        cai = professional("Cai")
        cai_shift = shift_data(event, cai, start, start.replace(hour=10))
        await parts.apply(message("shift.created", cai_shift.id, 1, cai_shift))
        later = ada_shift.model_copy(update={"start": start + timedelta(minutes=30)})
        await parts.apply(message("shift.updated", ada_shift.id, 2, later))
        moved = await record_of(parts, on_ada.id)
        assert (moved["status"], moved["professional_id"], moved["unit"]) == ("confirmed", cai.id, 1)
        assert await outbox_types(parts) == ["booking.needs_reschedule", "booking.reassigned"]
        nine = (await parts.store.event(event.id)).schedule.slot_starting_at(start)
        assert await parts.store.professional_usage(event.id, nine) == {str(cai.id): 1}  # one unit, Cai's
        # Redelivered, the change moves nothing twice.
        await parts.apply(message("shift.updated", ada_shift.id, 2, later))
        assert await outbox_types(parts) == ["booking.needs_reschedule", "booking.reassigned"]
        assert (await parts.owner.audit(event.id)).clean


async def test_a_hold_in_flight_when_its_capacity_goes_is_refused_at_commit_gives_its_unit_back_and_takes_afresh(
    servers, redis, key_prefix
):
    async with booking_parts(servers, redis, key_prefix) as parts:
        ada = professional("Ada")
        event, start, (shift,) = await setup_event(parts, ada, capacity=2)
        known = await parts.store.event(event.id)
        nine = known.schedule.slot_starting_at(start)
        taken = await parts.store.take(known, nine, 0.5, uuid.uuid4(), hold_seconds=30)
        assert taken.unit == 1
        original = parts.store.take

        async def take_then_shift_cancelled(*args, **kwargs):
            """The take succeeds on the old capacity; the cancel is applied before the commit."""
            result = await original(*args, **kwargs)
            cancelled = shift.model_copy(update={"status": ShiftStatus.CANCELLED})
            await parts.apply(message("shift.cancelled", shift.id, 2, cancelled))
            return result

        parts.store.take = take_then_shift_cancelled
        who = client()
        with pytest.raises(Problem) as refused:
            await parts.service.book(who, BookingIn(event_id=event.id, start=start), "key")
        # Refused at commit, its unit given back, taken afresh from the changed counters: nobody has room.
        assert (refused.value.status, refused.value.code) == (409, "slot_unavailable")
        assert await parts.pool.fetchval("SELECT count(*) FROM bookings") == 0
        # Its unit went back; the earlier hold (never committed) is all that is left in the slot.
        assert await parts.store.professional_usage(event.id, nine) == {str(ada.id): 1}
        assert await parts.store.earlier(parts.store.idempotency_key(event.id, who.id, "key")) is None  # a retry starts afresh


async def test_two_changes_of_one_professional_delivered_at_once_move_the_booking_once(servers, redis, key_prefix):
    async with booking_parts(servers, redis, key_prefix) as parts:
        ada, bob = professional("Ada"), professional("Bob")
        event, start, (morning,) = await setup_event(parts, ada, hours=(9, 10))
        afternoon = shift_data(event, ada, start.replace(hour=14), start.replace(hour=15))
        await parts.apply(message("shift.created", afternoon.id, 1, afternoon))
        booking, _ = await parts.service.book(client(), BookingIn(event_id=event.id, start=start), None)
        bob_shift = shift_data(event, bob, start, start.replace(hour=10))
        await parts.apply(message("shift.created", bob_shift.id, 1, bob_shift))
        cancel = lambda s: message("shift.cancelled", s.id, 2, s.model_copy(update={"status": ShiftStatus.CANCELLED}))  # noqa: E731
        await asyncio.gather(parts.apply(cancel(morning)), parts.apply(cancel(afternoon)))
        row = await record_of(parts, booking.id)
        assert (row["professional_id"], row["status"]) == (bob.id, "confirmed")
        assert await outbox_types(parts) == ["booking.reassigned"]
        nine = (await parts.store.event(event.id)).schedule.slot_starting_at(start)
        assert await parts.store.professional_usage(event.id, nine) == {str(bob.id): 1}


@pytest.mark.parametrize("when", ["before", "after"])
async def test_a_connection_lost_at_commit_is_resolved_by_the_record(servers, redis, key_prefix, when):
    """Cut before COMMIT reaches PostgreSQL: nothing written, the unit back, 503. Cut after it ran,
    its answer lost: the booking is committed, so the client hears it was made, and it keeps its unit."""
    upstream = urlsplit(servers.postgres_url)
    async with PostgresProxy(upstream.hostname, upstream.port or 5432) as proxy:
        async with booking_parts(servers, redis, key_prefix, via_port=proxy.port) as parts:
            ada = professional("Ada")
            event, start, _ = await setup_event(parts, ada)
            nine = (await parts.store.event(event.id)).schedule.slot_starting_at(start)
            proxy.cut = Cut("COMMIT", when)
            who = client()
            if when == "before":
                with pytest.raises(Problem) as failed:
                    await parts.service.book(who, BookingIn(event_id=event.id, start=start), "key")
                assert failed.value.status == 503
                assert await parts.pool.fetchval("SELECT count(*) FROM bookings") == 0
                assert await parts.store.professional_usage(event.id, nine) == {}
            else:
                booking, created = await parts.service.book(who, BookingIn(event_id=event.id, start=start), "key")
                assert created and (await record_of(parts, booking.id))["status"] == "confirmed"
                assert await parts.store.professional_usage(event.id, nine) == {str(ada.id): 1}
                again, created = await parts.service.book(who, BookingIn(event_id=event.id, start=start), "key")
                assert (again.id, created) == (booking.id, False)
            assert proxy.cut.done.is_set()


async def test_a_booking_that_cannot_commit_before_its_deadline_is_abandoned_before_commit(servers, redis, key_prefix):
    """PostgreSQL slow (150 ms a message): past its deadline a booking is rolled back, never left to
    commit after the client's gateway gave up on it; its unit goes back and a retry starts afresh."""
    upstream = urlsplit(servers.postgres_url)
    async with PostgresProxy(upstream.hostname, upstream.port or 5432) as proxy:
        async with booking_parts(servers, redis, key_prefix, via_port=proxy.port, deadline_seconds=0.25) as parts:
            ada = professional("Ada")
            event, start, _ = await setup_event(parts, ada)
            nine = (await parts.store.event(event.id)).schedule.slot_starting_at(start)
            proxy.latency_seconds = 0.15
            proxy.reset()
            who = client()
            with pytest.raises(Problem) as abandoned:
                await parts.service.book(who, BookingIn(event_id=event.id, start=start), "key")
            assert abandoned.value.status == 503
            proxy.latency_seconds = 0
            assert await parts.pool.fetchval("SELECT count(*) FROM bookings") == 0
            assert await parts.store.professional_usage(event.id, nine) == {}
            assert [q for q in proxy.statements if "COMMIT" in q] == [] and "ROLLBACK" in proxy.statements
            booking, created = await parts.service.book(who, BookingIn(event_id=event.id, start=start), "key")
            assert created and booking.professional.id == ada.id


async def test_redis_unreachable_at_confirm_changes_nothing_for_the_client_and_the_owner_keeps_the_unit(
    servers, redis, key_prefix
):
    async with booking_parts(servers, redis, key_prefix, hold_seconds=0.2) as parts:
        ada = professional("Ada")
        event, start, _ = await setup_event(parts, ada)

        async def unreachable(*args, **kwargs):
            raise ConnectionError("Redis went away")

        parts.store.confirm, confirm = unreachable, parts.store.confirm
        booking, created = await parts.service.book(client(), BookingIn(event_id=event.id, start=start), "key")
        assert created and (await record_of(parts, booking.id))["status"] == "confirmed"
        parts.store.confirm = confirm
        await asyncio.sleep(0.3)  # the hold has expired; the record has its booking
        assert await parts.owner.expire_holds() == (0, 1)  # dropped, the unit kept
        nine = (await parts.store.event(event.id)).schedule.slot_starting_at(start)
        assert await parts.store.professional_usage(event.id, nine) == {str(ada.id): 1}
        assert await parts.store.holds(event.id) == []


async def test_a_hold_whose_commit_never_came_back_is_given_back_once_with_two_owners(servers, redis, key_prefix):
    """Hold expiry is the owner's, in every instance at once: under the event's exclusive lock (no
    commit of it can be in flight), the record says the booking never committed; the unit goes
    back exactly once, and the key it was taken with is free for a retry."""
    async with booking_parts(servers, redis, key_prefix) as parts:
        ada = professional("Ada")
        event, start, _ = await setup_event(parts, ada, capacity=2)
        known = await parts.store.event(event.id)
        nine = known.schedule.slot_starting_at(start)
        record_key = parts.store.idempotency_key(event.id, uuid.uuid4(), "key")
        # Two processes died after their takes, before their commits: one with a key, one without.
        await parts.store.take(known, nine, 0.5, uuid.uuid4(), 0.2, record_key, "fp")
        await parts.store.take(known, nine, 0.5, uuid.uuid4(), 0.2)
        assert (await parts.counters.day_counts(event.id, event.start_date)).remaining[0] == 0
        await asyncio.sleep(0.3)
        units = units_of_work(parts.pool, wake_relay=lambda: None)
        second = CapacityOwner(units, parts.store, Offers(units, parts.store))
        results = await asyncio.gather(parts.owner.expire_holds(), second.expire_holds())
        assert sorted(results) == [(0, 0), (2, 0)]  # one instance gave both back; the other found them gone
        assert await parts.store.professional_usage(event.id, nine) == {} and await parts.store.holds(event.id) == []
        assert (await parts.counters.day_counts(event.id, event.start_date)).remaining[0] == 2  # not more
        assert await parts.store.earlier(record_key) is None  # a retry with the key starts afresh
        assert await parts.owner.expire_holds() == (0, 0)


async def test_the_audit_finds_a_booking_beyond_capacity_and_settling_moves_or_flags_it(servers, redis, key_prefix):
    async with booking_parts(servers, redis, key_prefix) as parts:
        ada = professional("Ada")
        event, start, _ = await setup_event(parts, ada, capacity=1)
        booking, _ = await parts.service.book(client(), BookingIn(event_id=event.id, start=start), None)
        assert (await parts.owner.audit(event.id)).clean
        # Behind the owner's back (a hand edit, a bug): the booking on a unit Ada does not have.
        conn = await asyncpg.connect(parts.database_url.replace("+asyncpg", ""))
        try:
            await conn.execute("UPDATE bookings SET unit = 2 WHERE id = $1", booking.id)
        finally:
            await conn.close()
        audit = await parts.owner.audit(event.id)
        assert not audit.clean and [b["booking_id"] for b in audit.beyond] == [str(booking.id)]
        repaired = await parts.owner.settle(event.id)
        assert (repaired.moved, repaired.flagged) == (0, 0)  # Ada still has her unit 1: the booking takes it
        assert (await record_of(parts, booking.id))["unit"] == 1
        assert (await parts.owner.audit(event.id)).clean
        assert booking_data(SimpleNamespace(**await record_of(parts, booking.id))).professional.id == ada.id


async def test_redis_back_from_an_old_copy_with_its_marker_still_set_is_repaired_by_reconcile(
    servers, redis, key_prefix, redis_kind
):
    """Redis restarted from an old snapshot keeps its "built" marker, so nothing rebuilds it by
    itself; a booking made since is missing from its counters. PostgreSQL's guard refuses the unit
    handed out twice, and reconcile finds the difference and rebuilds the event from the record."""
    raw = redis_kind.client(decode_responses=False)  # DUMP and RESTORE speak bytes
    async with booking_parts(servers, redis, key_prefix) as parts:
        ada = professional("Ada")
        event, start, (shift,) = await setup_event(parts, ada)
        keys = list(parts.store.keys(event.id).live().values())
        copy = {key: await raw.dump(key) for key in keys}
        made, _ = await parts.service.book(client(), BookingIn(event_id=event.id, start=start), None)
        for key, value in copy.items():  # back from the old copy
            await raw.delete(key)
            if value is not None:
                await raw.restore(key, 0, value)
        nine = (await parts.store.event(event.id)).schedule.slot_starting_at(start)
        assert await parts.store.professional_usage(event.id, nine) == {}
        with pytest.raises(Problem) as refused:  # the same unit again: the record refuses it
            await parts.service.book(client(), BookingIn(event_id=event.id, start=start), None)
        assert refused.value.status == 503

        report = await parts.owner.reconcile(event.id)
        assert "alloc" in report.repaired[str(event.id)] and report.beyond == []
        assert await parts.store.professional_usage(event.id, nine) == {str(ada.id): 1}
        assert await parts.store.holds(event.id) == [] and made.professional.id == ada.id
        assert (await parts.owner.reconcile(event.id)).repaired == {}  # repaired once: nothing left
    await raw.aclose()


async def test_reconcile_under_a_stream_of_bookings_finds_no_drift(servers, redis, key_prefix):
    """Under the event's exclusive lock the record holds still, and the counters are read in one
    step: a booking in flight is a hold in both views, never a difference to repair."""
    async with booking_parts(servers, redis, key_prefix) as parts:
        pros = [professional(name) for name in ("Ada", "Bob")]
        event, start, _ = await setup_event(parts, *pros, capacity=200)
        stop, made = asyncio.Event(), Counter()

        async def book_until_stopped() -> None:
            while not stop.is_set():
                await parts.service.book(client(), BookingIn(event_id=event.id, start=start), None)
                made["bookings"] += 1

        streams = [asyncio.create_task(book_until_stopped()) for _ in range(6)]
        reports, deadline = [], asyncio.get_running_loop().time() + 30
        try:  # five reconciles at least, and until the stream has made more than twenty bookings meanwhile
            while len(reports) < 5 or made["bookings"] <= 20:
                assert asyncio.get_running_loop().time() < deadline, made
                reports.append(await parts.owner.reconcile(event.id))
        finally:
            stop.set()
            await asyncio.gather(*streams)
        assert [r.repaired for r in reports] == [{}] * len(reports), reports


async def test_counters_rebuilt_while_the_owner_lags_offer_only_what_the_record_gives(servers, redis, key_prefix):
    """Bob's shift is published but not applied by the owner yet (its consumer reconnecting, say)
    when Redis is rebuilt: the counters come from the owner's record, so they do not offer Bob,
    and the second client hears 409 (full), not a unit the record then refuses (503)."""
    async with booking_parts(servers, redis, key_prefix) as parts:
        ada, bob = professional("Ada"), professional("Bob")
        event, start, _ = await setup_event(parts, ada)
        bob_shift = shift_data(event, bob, start, start.replace(hour=10))  # published, not applied
        assert (await parts.owner.rebuild(event.id)).events == 1
        first, _ = await parts.service.book(client(), BookingIn(event_id=event.id, start=start), None)
        assert first.professional.id == ada.id
        with pytest.raises(Problem) as refused:
            await parts.service.book(client(), BookingIn(event_id=event.id, start=start), None)
        assert refused.value.status == 409
        await parts.apply(message("shift.created", bob_shift.id, 1, bob_shift))  # applied: now offered
        second, _ = await parts.service.book(client(), BookingIn(event_id=event.id, start=start), None)
        assert second.professional.id == bob.id


def held_before_commit(parts, applied: asyncio.Event, commit: asyncio.Event) -> None:
    """The owner's shift changes stop after their Redis write, inside the transaction, until ``commit``."""
    apply_shift = parts.store.apply_shift

    async def held(sequence, shift):
        done = await apply_shift(sequence, shift)
        applied.set()
        await commit.wait()
        return done

    parts.store.apply_shift = held


async def test_a_rebuild_comes_after_a_change_in_flight_and_never_undoes_it(servers, redis, key_prefix):
    """The owner writes a change to Redis inside its transaction, before COMMIT. A rebuild that read
    the record in between would swap in counters without it: a rebuild takes the same exclusive
    lock, so it reads the record only once the change has committed."""
    async with booking_parts(servers, redis, key_prefix) as parts:
        ada = professional("Ada")
        event, start, (shift,) = await setup_event(parts, ada, capacity=1)
        applied, commit = asyncio.Event(), asyncio.Event()
        held_before_commit(parts, applied, commit)
        change = asyncio.create_task(parts.apply(message("shift.updated", shift.id, 2, shift.model_copy(update={"capacity": 3}))))
        await applied.wait()
        rebuild = asyncio.create_task(parts.owner.rebuild(event.id))
        await asyncio.sleep(0.3)
        assert not rebuild.done()  # waiting for the change's lock
        commit.set()
        await change
        assert (await rebuild).events == 1
        assert (await parts.counters.day_counts(event.id, event.start_date)).remaining[0] == 3  # 09:00, the first slot
        assert (await parts.owner.reconcile(event.id)).repaired == {}


async def test_after_redis_lost_its_data_a_change_builds_the_event_whole_from_the_record(servers, redis, key_prefix):
    """With the counters gone, a change applied to Redis alone would build a partial event (this
    one professional's shift), and moving a booking there would find nobody else working. The
    owner builds the whole event from its record instead, at once, and the change with it."""
    async with booking_parts(servers, redis, key_prefix) as parts:
        ada, bob = professional("Ada"), professional("Bob")
        event, start, (ada_shift,) = await setup_event(parts, ada, capacity=1)
        made, _ = await parts.service.book(client(), BookingIn(event_id=event.id, start=start), None)
        bob_shift = shift_data(event, bob, start, start.replace(hour=10))  # Bob comes in after it was made
        await parts.apply(message("shift.created", bob_shift.id, 1, bob_shift))
        async for key in redis.scan_iter(match=f"{key_prefix}:*"):  # Redis restarted without its data
            await redis.delete(key)
        cancelled = ada_shift.model_copy(update={"status": ShiftStatus.CANCELLED})
        async with asyncio.timeout(5):
            await parts.apply(message("shift.cancelled", ada_shift.id, 2, cancelled))
        moved = await record_of(parts, made.id)  # Ada's booking goes to Bob, who is working then
        assert (made.professional.id, moved["status"], moved["professional_id"]) == (ada.id, "confirmed", bob.id)
        assert (await parts.owner.audit(event.id)).clean
        assert (await parts.counters.day_counts(event.id, event.start_date)).remaining[0] == 0
        assert (await parts.owner.reconcile(event.id)).repaired == {}


async def test_redis_emptied_is_rebuilt_once_by_two_owners_sharing_the_work_and_bookings_wait_for_it(servers, redis, key_prefix):
    """Two booking instances notice Redis lost everything: they share the rebuild (each event once,
    under its lock), then the marker is set; meanwhile a booking answers 503 to try again, never a
    refusal made on half-built counters. An operator's rebuild of everything is one at a time."""
    async with booking_parts(servers, redis, key_prefix) as parts:
        events = [(await setup_event(parts, professional(name)))[:2] for name in ("Ada", "Bob", "Cai")]
        before = [decoded(await parts.store.raw(event.id)) for event, _ in events]
        async for key in redis.scan_iter(match=f"{key_prefix}:*"):
            await redis.delete(key)
        event, start = events[0]
        with pytest.raises(Problem) as waiting:
            await parts.service.book(client(), BookingIn(event_id=event.id, start=start), None)
        assert waiting.value.status == 503
        units = units_of_work(parts.pool, wake_relay=lambda: None)
        second = CapacityOwner(units, parts.store, Offers(units, parts.store))
        assert not await parts.store.is_built()
        shares = await asyncio.gather(parts.owner.rebuild_missing(), second.rebuild_missing())
        assert sorted(e for share in shares for e in share) == sorted(event.id for event, _ in events), shares
        assert await parts.store.is_built()
        commands = await asyncio.gather(parts.owner.rebuild_everything(), second.rebuild_everything())
        assert sorted(r is None for r in commands) == [False, True] and max(r.events for r in commands if r) == 3
        assert [decoded(await parts.store.raw(event.id)) for event, _ in events] == before
        booking, _ = await parts.service.book(client(), BookingIn(event_id=event.id, start=start), None)
        assert booking.professional.name == "Ada"


async def test_one_events_counters_gone_are_a_503_then_rebuilt_alone(servers, redis, key_prefix):
    """What one lost master of a Redis Cluster does: the marker survives elsewhere, one event's keys
    are gone. A booking for it is asked to try again (the record knows the event), and the owner's
    watch rebuilds that event alone."""
    async with booking_parts(servers, redis, key_prefix) as parts:
        (gone, start), (kept, _) = [(await setup_event(parts, professional(name)))[:2] for name in ("Ada", "Bob")]
        for key in parts.store.keys(gone.id).live().values():
            await redis.delete(key)
        parts.store._definitions.forget(gone.id)
        with pytest.raises(Problem) as waiting:
            await parts.service.book(client(), BookingIn(event_id=gone.id, start=start), None)
        assert (waiting.value.status, waiting.value.code) == (503, "try_again")
        with pytest.raises(Problem) as unknown:
            await parts.service.book(client(), BookingIn(event_id=uuid.uuid4(), start=start), None)
        assert (unknown.value.status, unknown.value.code) == (422, "unknown_event")
        assert await parts.owner.rebuild_missing() == [gone.id]
        assert await parts.owner.rebuild_missing() == []
        booking, _ = await parts.service.book(client(), BookingIn(event_id=gone.id, start=start), None)
        assert booking.professional.name == "Ada" and await parts.store.event(kept.id) is not None


async def test_one_lost_master_of_a_cluster_is_rebuilt_alone(servers, redis_cluster, key_prefix):
    """A Redis Cluster's master restarted empty (no replica): the events its hash slots held, and
    only those, are rebuilt; the others' counters are not touched."""
    redis = RedisCluster.from_url(redis_cluster, decode_responses=True)
    try:
        async with booking_parts(servers, redis, key_prefix) as parts:
            events = [(await setup_event(parts, professional(f"Pro {n}")))[0] for n in range(6)]
            node_of = {event.id: redis.get_node_from_key(parts.store.keys(event.id).event).name for event in events}
            lost = next(iter(set(node_of.values())))
            held = sorted((e for e, node in node_of.items() if node == lost), key=str)
            assert 0 < len(held) < len(events), node_of  # six events: spread over the masters
            kept_before = {e.id: decoded(await parts.store.raw(e.id)) for e in events if e.id not in held}
            await redis.flushall(target_nodes=redis.get_node(node_name=lost))
            assert sorted(await parts.owner.rebuild_missing(), key=str) == held
            assert {e: decoded(await parts.store.raw(e)) for e in kept_before} == kept_before
            assert [await parts.store.event(e) is not None for e in held] == [True] * len(held)
            assert await parts.store.is_built()  # the marker too, had it been on that master
    finally:
        await redis.aclose()
