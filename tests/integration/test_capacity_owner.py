"""The capacity owner and the booking transaction, called directly on real PostgreSQL and Redis,
where the interleavings that matter can be made to happen: a change the owner has not applied
yet, a hold in flight, two changes at once, a COMMIT whose answer is lost, Redis gone at confirm."""

import asyncio
import uuid
from datetime import datetime, time, timedelta
from types import SimpleNamespace
from urllib.parse import urlsplit

import asyncpg
import pytest
from redis.asyncio import Redis

from availability.adapters.record import EventRecord, event_records
from availability.service import Rebuilder
from booking.api import BookingIn
from booking.service import booking_data
from common.auth import Identity
from common.contracts import BookingStatus, DailyBlackoutData, ShiftStatus
from common.errors import Problem
from common.roles import Role
from tests.factories import event_data, message, professional, shift_data
from tests.integration.booking_parts import RecordOf, booking_parts
from tests.integration.tcp_proxy import Cut, PostgresProxy


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


async def test_a_hold_in_flight_when_its_capacity_goes_is_refused_at_commit_and_gives_its_unit_back(servers, redis, key_prefix):
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
        assert refused.value.status == 503
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


async def test_redis_unreachable_at_confirm_changes_nothing_for_the_client_and_reconcile_keeps_the_unit(
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
        await asyncio.sleep(0.3)  # the hold has expired
        # Reconcile's expiry pass, given the record's confirmed units (as the booking service serves them).
        units = await parts.confirmed_units(event.id)
        rebuilder = Rebuilder(parts.store, record=None, settle_seconds=0, flag_seconds=5)
        expired, kept = await rebuilder.expire_holds(EventRecord(1, event, []), units)
        assert (expired, kept) == (0, 1)
        nine = (await parts.store.event(event.id)).schedule.slot_starting_at(start)
        assert await parts.store.professional_usage(event.id, nine) == {str(ada.id): 1}


async def test_the_audit_finds_a_booking_beyond_capacity_and_settling_moves_or_flags_it_once_rebuilt(servers, redis, key_prefix):
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
        assert await parts.store.begin_rebuild(event.id, "a rebuild", 10)  # the repair waits it out
        settling = asyncio.create_task(parts.owner.settle(event.id))
        await asyncio.sleep(0.3)
        assert not settling.done()
        await parts.store.abandon_rebuild(event.id, "a rebuild")
        repaired = await settling
        assert (repaired.moved, repaired.flagged) == (0, 0)  # Ada still has her unit 1: the booking takes it
        assert (await record_of(parts, booking.id))["unit"] == 1
        assert (await parts.owner.audit(event.id)).clean
        assert booking_data(SimpleNamespace(**await record_of(parts, booking.id))).professional.id == ada.id


async def test_redis_back_from_an_old_copy_with_its_marker_still_set_is_repaired_by_reconcile(servers, redis, key_prefix):
    """Redis restarted from an old snapshot keeps its "built" marker, so nothing rebuilds it by
    itself; a booking made since is missing from its counters. PostgreSQL's guard refuses the unit
    handed out twice, and reconcile finds the difference and rebuilds the event from the record."""
    raw = Redis.from_url(servers.redis_url)  # DUMP and RESTORE speak bytes
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

        report = await Rebuilder(parts.store, RecordOf(parts), settle_seconds=0, flag_seconds=10).reconcile(event.id)
        assert "alloc" in report.repaired[str(event.id)] and report.record_audit["clean"]
        assert await parts.store.professional_usage(event.id, nine) == {str(ada.id): 1}
        assert await parts.store.holds(event.id) == [] and made.professional.id == ada.id
    await raw.aclose()


async def test_counters_rebuilt_while_the_owner_lags_offer_only_what_the_record_gives(servers, redis, key_prefix):
    """Bob's shift is published but not applied by the owner yet (its consumer reconnecting, say)
    when Redis is rebuilt: the counters come from the owner's record, so they do not offer Bob,
    and the second client hears 409 (full), not a unit the record then refuses (503)."""
    async with booking_parts(servers, redis, key_prefix) as parts:
        ada, bob = professional("Ada"), professional("Bob")
        event, start, _ = await setup_event(parts, ada)
        bob_shift = shift_data(event, bob, start, start.replace(hour=10))  # published, not applied
        await Rebuilder(parts.store, RecordOf(parts), settle_seconds=0, flag_seconds=10).rebuild(event.id)
        first, _ = await parts.service.book(client(), BookingIn(event_id=event.id, start=start), None)
        assert first.professional.id == ada.id
        with pytest.raises(Problem) as refused:
            await parts.service.book(client(), BookingIn(event_id=event.id, start=start), None)
        assert refused.value.status == 409
        await parts.apply(message("shift.created", bob_shift.id, 1, bob_shift))  # applied: now offered
        second, _ = await parts.service.book(client(), BookingIn(event_id=event.id, start=start), None)
        assert second.professional.id == bob.id
        assert [e["event"]["id"] for e in await parts.owner.snapshot(event.id)] == [str(event.id)]


def held_before_commit(parts, applied: asyncio.Event, commit: asyncio.Event) -> None:
    """The owner's shift changes stop after their Redis write, inside the transaction, until ``commit``."""
    apply_shift = parts.store.apply_shift

    async def held(sequence, shift):
        done = await apply_shift(sequence, shift)
        applied.set()
        await commit.wait()
        return done

    parts.store.apply_shift = held


async def test_a_rebuild_never_undoes_a_change_the_owner_wrote_to_redis_and_has_not_committed(servers, redis, key_prefix):
    """The owner writes a change to Redis inside its transaction, before COMMIT. A rebuild that read
    the record in between would swap in counters without it, wrong until a reconcile noticed: the
    record is read for a rebuild only once the change in flight has committed."""
    async with booking_parts(servers, redis, key_prefix) as parts:
        ada = professional("Ada")
        event, start, (shift,) = await setup_event(parts, ada, capacity=1)
        applied, commit = asyncio.Event(), asyncio.Event()
        held_before_commit(parts, applied, commit)
        change = asyncio.create_task(parts.apply(message("shift.updated", shift.id, 2, shift.model_copy(update={"capacity": 3}))))
        await applied.wait()
        rebuilder = Rebuilder(parts.store, RecordOf(parts), settle_seconds=0, flag_seconds=10)
        rebuild = asyncio.create_task(rebuilder.rebuild(event.id))
        await asyncio.sleep(0.5)  # the rebuild has asked for the record by now
        commit.set()
        await change
        assert (await rebuild).events == 1
        assert (await parts.store.day_counts(event.id, event.start_date)).remaining[0] == 3  # 09:00, the first slot
        assert (await rebuilder.reconcile(event.id)).repaired == {}


async def test_a_change_waiting_out_a_rebuild_holds_no_lock_the_rebuild_waits_for(servers, redis, key_prefix):
    """A change that reaches an event while it is rebuilt waits, with its transaction rolled back:
    the rebuild reads the record meanwhile (it waits for changes in flight, and this one must not
    be), and the change is applied on the rebuilt counters once the flag is gone."""
    async with booking_parts(servers, redis, key_prefix) as parts:
        ada = professional("Ada")
        event, start, (shift,) = await setup_event(parts, ada, capacity=1)
        assert await parts.store.begin_rebuild(event.id, "a rebuild", 10)
        change = asyncio.create_task(parts.apply(message("shift.updated", shift.id, 2, shift.model_copy(update={"capacity": 3}))))
        await asyncio.sleep(0.3)  # the change has met the flag
        async with asyncio.timeout(1):  # well within the lock timeout (2 s): nothing to wait for
            (record,) = event_records(await parts.owner.snapshot(event.id))
        assert [s.capacity for _, s in record.shifts] == [1] and not change.done()
        await parts.store.abandon_rebuild(event.id, "a rebuild")
        await change
        (record,) = event_records(await parts.owner.snapshot(event.id))
        assert [s.capacity for _, s in record.shifts] == [3]
        assert (await parts.store.day_counts(event.id, event.start_date)).remaining[0] == 3


async def test_after_redis_lost_its_data_a_change_waits_for_the_counters_to_be_rebuilt(servers, redis, key_prefix):
    """With the counters gone, a change applied to Redis would build a partial event (this one
    professional's shift alone), and moving a booking there would find nobody else working. The
    change waits until availability has rebuilt the counters from the record, then applies."""
    async with booking_parts(servers, redis, key_prefix) as parts:
        ada, bob = professional("Ada"), professional("Bob")
        event, start, (ada_shift,) = await setup_event(parts, ada, capacity=1)
        made, _ = await parts.service.book(client(), BookingIn(event_id=event.id, start=start), None)
        bob_shift = shift_data(event, bob, start, start.replace(hour=10))  # Bob comes in after it was made
        await parts.apply(message("shift.created", bob_shift.id, 1, bob_shift))
        async for key in redis.scan_iter(match=f"{key_prefix}:*"):  # Redis restarted without its data
            await redis.delete(key)
        cancelled = ada_shift.model_copy(update={"status": ShiftStatus.CANCELLED})
        change = asyncio.create_task(parts.apply(message("shift.cancelled", ada_shift.id, 2, cancelled)))
        await asyncio.sleep(0.5)
        assert not change.done()
        assert await Rebuilder(parts.store, RecordOf(parts), settle_seconds=0, flag_seconds=10).rebuild_everything()
        await change
        moved = await record_of(parts, made.id)  # Ada's booking goes to Bob, who is working then
        assert (made.professional.id, moved["status"], moved["professional_id"]) == (ada.id, "confirmed", bob.id)
        assert (await parts.owner.audit(event.id)).clean
        assert (await parts.store.day_counts(event.id, event.start_date)).remaining[0] == 0


async def test_a_reconcile_that_finds_the_counters_lost_leaves_them_to_the_rebuild_of_everything(servers, redis, key_prefix):
    """Redis lost its data while a reconcile went through the events: repairing them one by one, a
    second or more each, left the events not reached yet unanswerable (503) for as long (CI24: a
    minute). The reconcile stops, and the rebuild of everything brings them all back at once."""
    async with booking_parts(servers, redis, key_prefix) as parts:
        events = [(await setup_event(parts, professional(name)))[0] for name in ("Ada", "Bob", "Cai")]
        async for key in redis.scan_iter(match=f"{key_prefix}:*"):
            await redis.delete(key)
        rebuilder = Rebuilder(parts.store, RecordOf(parts), settle_seconds=0.1, flag_seconds=10)
        report = await rebuilder.reconcile()
        assert (report.stopped, report.events_checked, report.repaired) == (
            "the counters were lost; they are rebuilt all at once",
            0,
            {},
        )
        assert (await rebuilder.rebuild_everything()).events == 3
        assert [(await parts.store.event(event.id)).data for event in events] == events
