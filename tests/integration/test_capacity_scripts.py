"""The capacity scripts on real Redis: the booking service's writes, and what availability reads of them."""

import asyncio
import json
import time
import uuid
from collections import Counter
from datetime import datetime

import pytest

from availability.adapters.counters import Counters
from booking.adapters.capacity import AttemptLimit, CapacityStore, CountersLost, Earlier, Full, Limited, Taken
from booking.adapters.counters import UnitInUse, event_counters
from common.contracts import ShiftStatus
from common.counters import StaleEvent
from tests.factories import event_data, professional, shift_data
from tests.integration.helpers import decoded


@pytest.fixture
def redis(redis_of_either_kind):
    """Every test here runs on one Redis server, and again on a Redis Cluster of three masters."""
    return redis_of_either_kind


@pytest.fixture
async def event(store: CapacityStore):
    """A new event's counters, as the owner makes them: built from its record (no shifts yet)."""
    data = event_data()
    await store.replace_event(data.id, event_counters(1, data, [], []))
    return await store.event(data.id)


@pytest.fixture
def counters(redis, key_prefix) -> Counters:
    """What availability reads."""
    return Counters(redis, key_prefix)


def at(event, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(event.data.start_date, datetime.min.time().replace(hour=hour, minute=minute), event.schedule.zone)


def slot(event, hour: int, minute: int = 0):
    return event.schedule.slot_starting_at(at(event, hour, minute))


async def take(store: CapacityStore, event, slot_, chance: float):
    return await store.take(event, slot_, chance, uuid.uuid4(), hold_seconds=30)


def who(picks) -> list:
    return [p.professional.name if isinstance(p, Taken) else None for p in picks]


async def test_takes_only_while_there_is_capacity_and_only_from_professionals_who_have_it(store, event):
    ada, bob = professional("Ada"), professional("Bob")
    await store.apply_shift(1, shift_data(event.data, ada, at(event, 10), at(event, 11), capacity=2))
    await store.apply_shift(1, shift_data(event.data, bob, at(event, 10, 30), at(event, 11, 30), capacity=1))

    # 10:00: only Ada works, with two units.
    assert who([await take(store, event, slot(event, 10), 0.99) for _ in range(3)]) == ["Ada", "Ada", None]
    # 10:30: Ada has 2 units and 2 bookings today, Bob 1 unit and none: Bob first, then only Ada has room.
    assert who([await take(store, event, slot(event, 10, 30), 0.0) for _ in range(4)]) == ["Bob", "Ada", "Ada", None]
    # 11:30: nobody works.
    # 11:30: nobody works; the refusal carries the day's remaining units, read in the same step.
    refused = await take(store, event, slot(event, 11, 30), 0.5)
    assert isinstance(refused, Full) and len(refused.slots) == len(refused.remaining) == 16
    assert dict(zip((s.key for s in refused.slots), refused.remaining, strict=True))[slot(event, 10).key] == 0
    assert dict(zip((s.key for s in refused.slots), refused.remaining, strict=True))[slot(event, 11).key] == 1


async def test_a_take_sent_again_for_the_same_booking_holds_its_one_unit(store, event):
    """A client that lost the reply (a Redis connection cut after the script ran) sends it again:
    the booking keeps the unit it has, and no second one is taken."""
    ada = professional("Ada")
    await store.apply_shift(1, shift_data(event.data, ada, at(event, 10), at(event, 11), capacity=2))
    booking = uuid.uuid4()
    first = await store.take(event, slot(event, 10), 0.5, booking, hold_seconds=30)
    again = await store.take(event, slot(event, 10), 0.5, booking, hold_seconds=30)
    assert (again.professional.id, again.unit) == (first.professional.id, first.unit)
    assert await store.professional_usage(event.data.id, slot(event, 10)) == {str(ada.id): 1}
    assert [h.taken.booking_id for h in await store.holds(event.data.id)] == [booking]


async def test_ties_are_broken_by_the_callers_random_number(store, event):
    pros = sorted((professional(n) for n in ("P1", "P2", "P3")), key=lambda p: str(p.id))
    for pro in pros:
        await store.apply_shift(1, shift_data(event.data, pro, at(event, 9), at(event, 17)))
    first = await take(store, event, slot(event, 9), 0.0)
    assert first.professional.id == pros[0].id  # lowest id among the three tied at zero bookings
    second = await take(store, event, slot(event, 9, 30), 0.99)
    assert second.professional.id == pros[2].id  # among the two with no booking yet, the last
    third = await take(store, event, slot(event, 10), 0.99)
    assert third.professional.id == pros[1].id  # the only one left with no booking today


async def test_fifty_concurrent_takes_of_five_units_give_exactly_five(store, event, counters):
    ada, bob = professional("Ada"), professional("Bob")
    await store.apply_shift(1, shift_data(event.data, ada, at(event, 14), at(event, 15), capacity=3))
    await store.apply_shift(1, shift_data(event.data, bob, at(event, 14), at(event, 15), capacity=2))
    two = slot(event, 14)
    results = await asyncio.gather(*(take(store, event, two, i / 50) for i in range(50)))
    taken = Counter(r.professional.name for r in results if isinstance(r, Taken))
    assert taken == {"Ada": 3, "Bob": 2}
    assert await store.professional_usage(event.data.id, two) == {str(ada.id): 3, str(bob.id): 2}
    units = json.loads(await store._redis.hget(store.keys(event.data.id).alloc, two.key))["u"]
    assert {pro: sorted(map(int, held)) for pro, held in units.items()} == {str(ada.id): [1, 2, 3], str(bob.id): [1, 2]}
    counts = await counters.day_counts(event.data.id, event.data.start_date)
    index = counts.slots.index(two)
    assert (counts.capacity[index], counts.remaining[index]) == (5, 0)


async def test_release_returns_exactly_the_bookings_own_unit_and_only_once(store, event, counters):
    ada, bob = professional("Ada"), professional("Bob")
    await store.apply_shift(1, shift_data(event.data, ada, at(event, 9), at(event, 10)))
    await store.apply_shift(1, shift_data(event.data, bob, at(event, 9), at(event, 10)))
    nine = slot(event, 9)
    booking = uuid.uuid4()
    await store.take(event, nine, 0.0, booking, hold_seconds=30)
    assert await store.release(event, nine, uuid.uuid4()) is False  # not that booking's
    assert await store.release(event, nine, booking) is True
    assert await store.release(event, nine, booking) is False  # twice: nothing more
    counts = await counters.day_counts(event.data.id, event.data.start_date)
    assert counts.remaining[counts.slots.index(nine)] == 2


async def test_a_hold_that_is_never_confirmed_can_expire_and_a_confirmed_one_cannot(store, event):
    ada = professional("Ada")
    await store.apply_shift(1, shift_data(event.data, ada, at(event, 9), at(event, 10), capacity=2))
    nine = slot(event, 9)
    confirmed, abandoned = uuid.uuid4(), uuid.uuid4()
    kept = await store.take(event, nine, 0.5, confirmed, hold_seconds=30)
    lost = await store.take(event, nine, 0.5, abandoned, hold_seconds=0)
    assert (kept.unit, lost.unit) == (1, 2)
    assert await store.confirm(event.data.id, confirmed) is True
    assert [h.taken.booking_id for h in await store.holds(event.data.id)] == [abandoned]
    # Expiring releases only what is still a hold: the confirmed unit stays taken.
    assert await store.release(event, nine, confirmed, held_only=True) is False
    assert await store.release(event, nine, abandoned, held_only=True) is True
    assert await store.professional_usage(event.data.id, nine) == {str(ada.id): 1}
    assert await store.holds(event.data.id) == []


async def test_an_idempotency_key_is_checked_and_taken_in_the_same_step_as_the_unit(store, event):
    ada = professional("Ada")
    await store.apply_shift(1, shift_data(event.data, ada, at(event, 9), at(event, 10), capacity=5))
    nine, client = slot(event, 9), uuid.uuid4()
    key = store.idempotency_key(event.data.id, client, "k-1")
    attempts = [uuid.uuid4() for _ in range(20)]
    results = await asyncio.gather(
        *(store.take(event, nine, 0.5, b, hold_seconds=30, idempotency_key=key, fingerprint="fp") for b in attempts)
    )
    taken = [r for r in results if isinstance(r, Taken)]
    earlier = [r for r in results if isinstance(r, Earlier)]
    assert (len(taken), len(earlier)) == (1, 19)  # racing retries: one unit, the others see it in flight
    first = attempts[results.index(taken[0])]
    assert {(e.state, e.booking_id) for e in earlier} == {("held", first)}
    # Committed: retries get the booking; a failed attempt instead lets the next one start afresh.
    await store.confirm(event.data.id, first, key, Earlier("done", first, "fp", '{"id": 1}'), keep_seconds=60)
    again = await store.take(event, nine, 0.5, uuid.uuid4(), hold_seconds=30, idempotency_key=key, fingerprint="fp")
    assert (again.state, again.data) == ("done", '{"id": 1}')
    other = store.idempotency_key(event.data.id, client, "k-2")
    failed = uuid.uuid4()
    await store.take(event, nine, 0.5, failed, hold_seconds=30, idempotency_key=other, fingerprint="fp")
    assert await store.release(event, nine, failed, idempotency_key=other) is True
    assert await store.earlier(other) is None
    assert await store.professional_usage(event.data.id, nine) == {str(ada.id): 1}


async def test_relocate_keeps_a_booking_with_its_professional_when_they_have_room_else_moves_it(store, event, counters):
    ada, bob, cai = professional("Ada"), professional("Bob"), professional("Cai")
    ada_shift = shift_data(event.data, ada, at(event, 9), at(event, 10), capacity=3)
    await store.apply_shift(1, ada_shift)
    nine = slot(event, 9)
    bookings = [uuid.uuid4() for _ in range(3)]
    for b in bookings:
        assert (await store.take(event, nine, 0.5, b, hold_seconds=30)).professional.id == ada.id
    await store.release(event, nine, bookings[1])  # units 1 and 3 held now
    await store.apply_shift(2, ada_shift.model_copy(update={"capacity": 2}))
    # Unit 3 is beyond Ada's capacity of 2, but her unit 2 is free: she keeps the booking.
    kept = await store.relocate(event, nine, bookings[2], ada.id, 0.5)
    assert (kept.professional.id, kept.unit) == (ada.id, 2)
    assert await store.relocate(event, nine, bookings[2], ada.id, 0.5) == kept  # idempotent

    await store.apply_shift(3, ada_shift.model_copy(update={"capacity": 1}))
    assert await store.relocate(event, nine, bookings[2], ada.id, 0.5) is None  # nobody else works: it holds nothing
    counts = await counters.day_counts(event.data.id, event.data.start_date)
    assert (counts.capacity[0], counts.remaining[0]) == (1, 0)

    for pro in (bob, cai):
        await store.apply_shift(1, shift_data(event.data, pro, at(event, 9), at(event, 10)))
    await store.apply_shift(4, ada_shift.model_copy(update={"status": ShiftStatus.CANCELLED}))
    moved = await store.relocate(event, nine, bookings[0], ada.id, 0.0)
    assert (moved.professional.id, moved.unit) == (min(bob.id, cai.id, key=str), 1)
    assert set(moved.eligible) == {str(bob.id), str(cai.id)}
    assert await store.professional_usage(event.data.id, nine) == {str(moved.professional.id): 1}
    counts = await counters.day_counts(event.data.id, event.data.start_date)
    assert (counts.capacity[0], counts.remaining[0]) == (2, 1)
    # A slot nobody may hold any more (blacked out): the booking gives its unit back.
    assert await store.relocate(event, nine, bookings[0], moved.professional.id, 0.0, blocked=True) is None
    assert await store.professional_usage(event.data.id, nine) == {}


async def test_shift_changes_apply_once_and_an_older_sequence_never_overwrites_a_newer(store, event, counters):
    ada = professional("Ada")
    first = shift_data(event.data, ada, at(event, 9), at(event, 10), capacity=1)
    grown = shift_data(event.data, ada, at(event, 9), at(event, 11), capacity=3, shift_id=first.id)
    cancelled = shift_data(
        event.data, ada, at(event, 9), at(event, 11), capacity=3, shift_id=first.id, status=ShiftStatus.CANCELLED
    )

    assert await store.apply_shift(2, grown) is True
    assert await store.apply_shift(1, first) is False  # arrived late: ignored
    assert await store.apply_shift(2, grown) is False  # duplicate: ignored
    counts = await counters.day_counts(event.data.id, event.data.start_date)
    assert counts.capacity[:4] == [3, 3, 3, 3]
    assert await store.apply_shift(3, cancelled) is True
    counts = await counters.day_counts(event.data.id, event.data.start_date)
    assert set(counts.capacity) == {0}


async def test_a_take_checked_against_an_old_event_definition_is_refused(store, event):
    ada = professional("Ada")
    await store.apply_shift(1, shift_data(event.data, ada, at(event, 9), at(event, 10)))
    await store.apply_event(2, event.data)  # e.g. a blackout was added meanwhile
    with pytest.raises(StaleEvent):
        await take(store, event, slot(event, 9), 0.5)
    fresh = await store.event(event.data.id)
    assert (await take(store, fresh, slot(fresh, 9), 0.5)).professional.id == ada.id


async def test_a_rebuild_swaps_in_the_records_counters_in_one_step_keeping_the_holds_taken_meanwhile(store, event, counters):
    """The owner rebuilds under the event's exclusive lock, so only takes can happen meanwhile: the
    swap merges the holds it finds, and drops one the record gives no room for."""
    ada = professional("Ada")
    shift = shift_data(event.data, ada, at(event, 9), at(event, 10), capacity=2)
    await store.apply_shift(1, shift)
    nine = slot(event, 9)
    committed, in_flight = uuid.uuid4(), uuid.uuid4()
    await store.take(event, nine, 0.5, committed, hold_seconds=30)
    await store.confirm(event.data.id, committed)
    await store.take(event, nine, 0.5, in_flight, hold_seconds=30)  # taken after the record was read
    before = await store.raw(event.data.id)

    rebuilt = event_counters(1, event.data, [(1, shift)], [UnitInUse(nine.key, ada.id, 1, committed)])
    assert await store.replace_event(event.data.id, rebuilt) == (1, 0)
    assert decoded(await store.raw(event.data.id)) == decoded(before)  # the same state, built another way
    assert (await counters.day_counts(event.data.id, event.data.start_date)).remaining[0] == 0
    assert await store.replace_event(event.data.id, rebuilt) == (1, 0)  # again: the same

    # Redis lost a booking the record has on unit 2 (an old copy, say): the hold there is dropped,
    # its commit will be refused by the record's unique unit, and the booking keeps its unit.
    recorded_elsewhere = uuid.uuid4()
    units = [UnitInUse(nine.key, ada.id, 1, committed), UnitInUse(nine.key, ada.id, 2, recorded_elsewhere)]
    assert await store.replace_event(event.data.id, event_counters(1, event.data, [(1, shift)], units)) == (0, 1)
    state = decoded(await store.raw(event.data.id))
    assert state["holds"] == {} and state["alloc"][nine.key]["u"] == {
        str(ada.id): {"1": str(committed), "2": str(recorded_elsewhere)}
    }


async def test_a_rebuild_sent_again_after_it_ran_swaps_nothing_away(store, event, redis):
    """A lost connection makes the client send the script again: the built keys are gone by then,
    and a second swap must not replace the live counters with nothing."""
    ada = professional("Ada")
    shift = shift_data(event.data, ada, at(event, 9), at(event, 10), capacity=2)
    await store.apply_shift(1, shift)
    live, staged = store.keys(event.data.id), store.keys(event.data.id).__class__.of(store._prefix, event.data.id, "next:")
    assert await store.replace_event(event.data.id, event_counters(1, event.data, [(1, shift)], [])) == (0, 0)
    before = await store.raw(event.data.id)
    again = await store._rebuild(keys=[*staged.live().values(), *live.live().values()], args=store._announce(event.data.id))
    assert again == [-1, 0] and await store.raw(event.data.id) == before


async def test_a_change_to_an_event_without_counters_is_refused_so_the_owner_builds_it_whole(store, redis, key_prefix):
    """Applied alone to an event Redis lost (or has not seen), a shift would make a partial event:
    every script that changes or moves capacity says so instead, and the owner rebuilds it."""
    data = event_data()
    ada = professional("Ada")
    shift = shift_data(
        data,
        ada,
        *(datetime.combine(data.start_date, datetime.min.time().replace(hour=h), data.schedule().zone) for h in (9, 10)),
    )
    with pytest.raises(CountersLost):
        await store.apply_event(1, data)
    with pytest.raises(CountersLost):
        await store.apply_shift(1, shift)
    assert [key async for key in redis.scan_iter(match=f"{key_prefix}:*")] == []  # nothing written
    await store.replace_event(data.id, event_counters(1, data, [(1, shift)], []))
    known = await store.event(data.id)
    nine = known.schedule.slot_starting_at(shift.start)
    booking = uuid.uuid4()
    assert (await store.take(known, nine, 0.5, booking, hold_seconds=30)).unit == 1
    for key in store.keys(data.id).live().values():
        await redis.delete(key)  # lost
    with pytest.raises(CountersLost):
        await store.relocate(known, nine, booking, ada.id, 0.5)
    with pytest.raises(StaleEvent):  # a take finds no event: the client hears 503 until it is rebuilt
        await store.take(known, nine, 0.5, uuid.uuid4(), hold_seconds=30)


async def test_scripts_called_by_sha_are_loaded_again_when_redis_forgot_them(store, event, redis):
    ada = professional("Ada")
    await store.apply_shift(1, shift_data(event.data, ada, at(event, 9), at(event, 10)))
    await redis.script_flush()  # what a Redis restart does to the script cache
    assert (await take(store, event, slot(event, 9), 0.5)).professional.id == ada.id


async def test_attempts_are_counted_per_client_once_each_and_a_retry_after_a_changed_event_is_not_an_attempt(store, event):
    ada = professional("Ada")
    await store.apply_shift(1, shift_data(event.data, ada, at(event, 9), at(event, 10), capacity=5))
    nine = slot(event, 9)
    eager, other = AttemptLimit(uuid.uuid4(), per_window=2), AttemptLimit(uuid.uuid4(), per_window=2)

    async def attempt(limit, key=None):
        record = store.idempotency_key(event.data.id, limit.client_id, key) if key else None
        return await store.take(event, nine, 0.5, uuid.uuid4(), 30, record, "fp", limit)

    await store.apply_event(2, event.data)  # e.g. a blackout was added
    for _ in range(3):  # refused as checked against the old definition: the caller checks again, one attempt in all
        with pytest.raises(StaleEvent):
            await attempt(eager)
    event = await store.event(event.data.id)
    assert isinstance(await attempt(eager, "key-1"), Taken)
    assert isinstance(await attempt(eager, "key-1"), Earlier)  # a replay is answered, not counted
    assert isinstance(await attempt(eager), Taken)
    limited = await attempt(eager)
    assert isinstance(limited, Limited) and 59 <= limited.retry_after <= 60  # when the first leaves the minute
    assert isinstance(await attempt(other), Taken)  # another client is not held back
    assert len(await store.holds(event.data.id)) == 3  # the limited attempt took nothing


async def test_a_clients_attempts_are_limited_in_any_window_not_per_window_of_the_clock(store, event):
    """Two attempts a second: the third is refused though the wall clock's second turned between
    them (a fixed window would let it through, and two more), and let through once the first is a
    second old."""
    ada = professional("Ada")
    await store.apply_shift(1, shift_data(event.data, ada, at(event, 9), at(event, 10), capacity=5))
    limit = AttemptLimit(uuid.uuid4(), per_window=2, window_seconds=1)

    async def attempt():
        return await store.take(event, slot(event, 9), 0.5, uuid.uuid4(), 30, limit=limit)

    await asyncio.sleep(1.7 - time.time() % 1)  # 0.7 s into a second, so the next turns mid-test
    first = time.monotonic()
    assert isinstance(await attempt(), Taken)
    await asyncio.sleep(0.1)
    assert isinstance(await attempt(), Taken)
    await asyncio.sleep(0.3)  # the wall clock's second has turned
    assert await attempt() == Limited(retry_after=1)
    await asyncio.sleep(max(0.0, first + 1.03 - time.monotonic()))
    assert isinstance(await attempt(), Taken)  # the first attempt is a second old
    assert isinstance(await attempt(), Limited)  # the second is not yet
