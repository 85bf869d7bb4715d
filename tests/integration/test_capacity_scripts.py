"""The capacity scripts on real Redis."""

import asyncio
import json
import uuid
from collections import Counter
from datetime import datetime

import pytest

from common.capacity import CapacityStore, Rebuilding, StaleEvent, UnitInUse, event_counters
from common.contracts import ShiftStatus
from tests.factories import event_data, professional, shift_data


@pytest.fixture
async def event(store: CapacityStore):
    data = event_data()
    await store.apply_event(1, data)
    return await store.event(data.id)


def at(event, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(event.data.start_date, datetime.min.time().replace(hour=hour, minute=minute), event.schedule.zone)


def slot(event, hour: int, minute: int = 0):
    return event.schedule.slot_starting_at(at(event, hour, minute))


async def take(store: CapacityStore, event, slot_, chance: float):
    return await store.take(event, slot_, chance, uuid.uuid4(), hold_seconds=30)


def who(picks) -> list:
    return [p.professional.name if p else None for p in picks]


async def test_takes_only_while_there_is_capacity_and_only_from_professionals_who_have_it(store, event):
    ada, bob = professional("Ada"), professional("Bob")
    await store.apply_shift(1, shift_data(event.data, ada, at(event, 10), at(event, 11), capacity=2))
    await store.apply_shift(1, shift_data(event.data, bob, at(event, 10, 30), at(event, 11, 30), capacity=1))

    # 10:00: only Ada works, with two units.
    assert who([await take(store, event, slot(event, 10), 0.99) for _ in range(3)]) == ["Ada", "Ada", None]
    # 10:30: Ada has 2 units and 2 bookings today, Bob 1 unit and none: Bob first, then only Ada has room.
    assert who([await take(store, event, slot(event, 10, 30), 0.0) for _ in range(4)]) == ["Bob", "Ada", "Ada", None]
    # 11:30: nobody works.
    assert await take(store, event, slot(event, 11, 30), 0.5) is None


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


async def test_fifty_concurrent_takes_of_five_units_give_exactly_five(store, event):
    ada, bob = professional("Ada"), professional("Bob")
    await store.apply_shift(1, shift_data(event.data, ada, at(event, 14), at(event, 15), capacity=3))
    await store.apply_shift(1, shift_data(event.data, bob, at(event, 14), at(event, 15), capacity=2))
    two = slot(event, 14)
    results = await asyncio.gather(*(take(store, event, two, i / 50) for i in range(50)))
    taken = Counter(r.professional.name for r in results if r)
    assert taken == {"Ada": 3, "Bob": 2}
    assert await store.professional_usage(event.data.id, two) == {str(ada.id): 3, str(bob.id): 2}
    units = json.loads(await store._redis.hget(store.keys(event.data.id).alloc, two.key))["u"]
    assert {pro: sorted(map(int, held)) for pro, held in units.items()} == {str(ada.id): [1, 2, 3], str(bob.id): [1, 2]}
    counts = await store.day_counts(event.data.id, event.data.start_date)
    index = counts.slots.index(two)
    assert (counts.capacity[index], counts.remaining[index]) == (5, 0)


async def test_release_returns_exactly_the_bookings_own_unit_and_only_once(store, event):
    ada, bob = professional("Ada"), professional("Bob")
    await store.apply_shift(1, shift_data(event.data, ada, at(event, 9), at(event, 10)))
    await store.apply_shift(1, shift_data(event.data, bob, at(event, 9), at(event, 10)))
    nine = slot(event, 9)
    booking = uuid.uuid4()
    taken = await store.take(event, nine, 0.0, booking, hold_seconds=30)
    other = bob.id if taken.professional.id == ada.id else ada.id
    assert await store.release(event, nine, other, taken.unit, booking) is False  # not that professional's
    assert await store.release(event, nine, taken.professional.id, taken.unit, uuid.uuid4()) is False  # not that booking's
    assert await store.release(event, nine, taken.professional.id, taken.unit, booking) is True
    assert await store.release(event, nine, taken.professional.id, taken.unit, booking) is False  # twice: nothing more
    counts = await store.day_counts(event.data.id, event.data.start_date)
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
    assert await store.release(event, nine, ada.id, 1, confirmed, held_only=True) is False
    assert await store.release(event, nine, ada.id, 2, abandoned, held_only=True) is True
    assert await store.professional_usage(event.data.id, nine) == {str(ada.id): 1}
    assert await store.holds(event.data.id) == []


async def test_move_gives_a_booking_to_another_professional_with_room_or_to_nobody(store, event):
    ada, bob, cai = professional("Ada"), professional("Bob"), professional("Cai")
    for pro in (ada, bob):
        await store.apply_shift(1, shift_data(event.data, pro, at(event, 9), at(event, 10)))
    nine = slot(event, 9)
    first, second = uuid.uuid4(), uuid.uuid4()
    a = await store.take(event, nine, 0.0, first, hold_seconds=30)
    b = await store.take(event, nine, 0.0, second, hold_seconds=30)
    assert {a.professional.id, b.professional.id} == {ada.id, bob.id}
    assert await store.move(event, nine, first, a.professional.id, a.unit, 0.5) is None  # everyone else is full
    await store.apply_shift(1, shift_data(event.data, cai, at(event, 9), at(event, 10)))
    moved = await store.move(event, nine, first, a.professional.id, a.unit, 0.5)
    assert (moved.professional.id, moved.unit) == (cai.id, 1)
    assert await store.professional_usage(event.data.id, nine) == {str(b.professional.id): 1, str(cai.id): 1}
    counts = await store.day_counts(event.data.id, event.data.start_date)
    assert counts.remaining[counts.slots.index(nine)] == 1  # a move neither takes nor frees a unit


async def test_shift_changes_apply_once_and_an_older_sequence_never_overwrites_a_newer(store, event):
    ada = professional("Ada")
    first = shift_data(event.data, ada, at(event, 9), at(event, 10), capacity=1)
    grown = shift_data(event.data, ada, at(event, 9), at(event, 11), capacity=3, shift_id=first.id)
    cancelled = shift_data(
        event.data, ada, at(event, 9), at(event, 11), capacity=3, shift_id=first.id, status=ShiftStatus.CANCELLED
    )

    assert await store.apply_shift(2, grown) is True
    assert await store.apply_shift(1, first) is False  # arrived late: ignored
    assert await store.apply_shift(2, grown) is False  # duplicate: ignored
    counts = await store.day_counts(event.data.id, event.data.start_date)
    assert counts.capacity[:4] == [3, 3, 3, 3]
    assert await store.apply_shift(3, cancelled) is True
    counts = await store.day_counts(event.data.id, event.data.start_date)
    assert set(counts.capacity) == {0}


async def test_a_take_checked_against_an_old_event_definition_is_refused(store, event):
    ada = professional("Ada")
    await store.apply_shift(1, shift_data(event.data, ada, at(event, 9), at(event, 10)))
    await store.apply_event(2, event.data)  # e.g. a blackout was added meanwhile
    with pytest.raises(StaleEvent):
        await take(store, event, slot(event, 9), 0.5)
    fresh = await store.event(event.data.id)
    assert (await take(store, fresh, slot(fresh, 9), 0.5)).professional.id == ada.id


async def test_while_an_event_is_rebuilt_takes_are_refused_and_readers_see_the_old_counters(store, event):
    ada = professional("Ada")
    shift = shift_data(event.data, ada, at(event, 9), at(event, 10), capacity=2)
    await store.apply_shift(1, shift)
    nine = slot(event, 9)
    booking = uuid.uuid4()
    await store.take(event, nine, 0.5, booking, hold_seconds=30)
    await store.confirm(event.data.id, booking)
    before = await store.raw(event.data.id)

    assert await store.begin_rebuild(event.data.id, "token-1", ttl_seconds=30)
    assert not await store.begin_rebuild(event.data.id, "token-2", ttl_seconds=30)  # one rebuild at a time
    with pytest.raises(Rebuilding):
        await take(store, event, nine, 0.5)
    with pytest.raises(Rebuilding):
        await store.apply_shift(2, shift.model_copy(update={"capacity": 3}))
    assert (await store.day_counts(event.data.id, event.data.start_date)).remaining[:2] == [1, 2]  # as before the flag

    rebuilt = event_counters(1, event.data, [(1, shift)], [UnitInUse(nine.key, ada.id, 1, booking)])
    assert await store.replace_event(event.data.id, rebuilt, "token-2") is False  # not the flag's holder
    assert await store.raw(event.data.id) == before
    assert await store.replace_event(event.data.id, rebuilt, "token-1") is True
    assert decoded(await store.raw(event.data.id)) == decoded(before)  # the same state, built another way
    assert (await take(store, await store.event(event.data.id), nine, 0.5)).professional.id == ada.id


def decoded(state: dict[str, dict[str, str]]) -> dict:
    return {name: {k: json.loads(v) if v[:1] in "{[" else v for k, v in fields.items()} for name, fields in state.items()}


async def test_scripts_called_by_sha_are_loaded_again_when_redis_forgot_them(store, event, redis):
    ada = professional("Ada")
    await store.apply_shift(1, shift_data(event.data, ada, at(event, 9), at(event, 10)))
    await redis.script_flush()  # what a Redis restart does to the script cache
    assert (await take(store, event, slot(event, 9), 0.5)).professional.id == ada.id
