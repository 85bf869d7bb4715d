"""The capacity rule (a professional's capacity in a slot is the sum of the capacities of their
active shifts covering the whole slot) must be written where each language needs it: the record's
Python (``booking.domain.capacity_of``, which the audit and the unit-test fakes use), the record's
SQL (``NEW_BOOKING``: the unit a booking takes must be within it), the scripts' Lua (``apply_shift``,
which keeps it in the counters) and the rebuild's Python (``event_counters``). On random events,
shifts and changes, all four agree, on the real PostgreSQL and Redis."""

import asyncio
import json
import os
import uuid
from datetime import datetime, time, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from booking.adapters.counters import event_counters
from booking.adapters.repository import Repository
from booking.domain import Booking, capacity_of
from booking.service import booking_data
from common.contracts import ShiftStatus
from common.events import BookingConfirmed
from tests.factories import event_data, professional, shift_data
from tests.integration.booking_parts import booking_parts

SLOTS = 6  # 09:00 to 12:00, half an hour each
PROFESSIONALS = [professional(name) for name in ("Ada", "Bob", "Cai")]
EXAMPLES = int(os.environ.get("CAPACITY_RULE_EXAMPLES", "40"))

shifts_strategy = st.lists(
    st.tuples(
        st.integers(0, len(PROFESSIONALS) - 1),  # whose
        st.integers(0, SLOTS - 1),  # first slot
        st.integers(1, SLOTS),  # length in slots
        st.integers(1, 3),  # capacity
        st.booleans(),  # active
        st.integers(0, 2),  # changed this many times before its final state
    ),
    max_size=6,
)


def test_python_sql_and_lua_agree_on_every_professionals_capacity_in_every_slot(servers, key_prefix, redis_kind):
    loop = asyncio.new_event_loop()
    try:
        redis = redis_kind.client()
        context = booking_parts(servers, redis, key_prefix)
        parts = loop.run_until_complete(context.__aenter__())

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        @given(shifts_strategy)
        def agree(drawn) -> None:
            loop.run_until_complete(check(parts, drawn))

        try:
            agree()
        finally:
            loop.run_until_complete(context.__aexit__(None, None, None))
            loop.run_until_complete(redis.aclose())
    finally:
        loop.close()


async def check(parts, drawn) -> None:
    event = event_data(days=1, opens=time(9), closes=time(12))
    nine = datetime.combine(event.start_date, time(9), event.schedule().zone)
    slots = [(nine + timedelta(minutes=30 * i), nine + timedelta(minutes=30 * (i + 1))) for i in range(SLOTS)]
    shifts = []  # (sequence, final state)
    await parts.store.replace_event(event.id, event_counters(1, event, [], []))
    async with parts.pool.acquire() as connection:
        record = Repository(connection)
        await record.keep_newest_event(event, 1)
        for pro, first, length, capacity, active, changes in drawn:
            start = nine + timedelta(minutes=30 * first)
            end = nine + timedelta(minutes=30 * min(SLOTS, first + length))
            shift = shift_data(event, PROFESSIONALS[pro], start, end, capacity)
            for sequence in range(1, changes + 2):  # earlier states (other capacities) first, as they were published
                last = sequence == changes + 1
                state = shift.model_copy(
                    update={"capacity": capacity if last else 4 - capacity, "status": ShiftStatus.ACTIVE}
                    | ({} if active or not last else {"status": ShiftStatus.CANCELLED})
                )
                await record.keep_newest_shift(state, sequence)
                await parts.store.apply_shift(sequence, state)
            shifts.append((changes + 1, state))
        coverage = await record.coverage(event.id)

        python = {(s, p.id): capacity_of(p.id, *slots[s], coverage) for s in range(SLOTS) for p in PROFESSIONALS}
        alloc = {int(k): json.loads(v)["c"] for k, v in event_counters(1, event, shifts, [])["alloc"].items()}
        rebuilt = {
            (s, p.id): alloc.get(int(slots[s][0].timestamp()), {}).get(str(p.id), 0) for s in range(SLOTS) for p in PROFESSIONALS
        }
        stored = await parts.store._redis.hgetall(parts.store.keys(event.id).alloc)
        live = {int(k): json.loads(v)["c"] for k, v in stored.items()}
        lua = {
            (s, p.id): live.get(int(slots[s][0].timestamp()), {}).get(str(p.id), 0) for s in range(SLOTS) for p in PROFESSIONALS
        }
        assert python == rebuilt == lua

        # SQL: a booking's unit is accepted exactly up to the capacity (the highest unit, then one more).
        for (s, pro_id), capacity in python.items():
            pro = next(p for p in PROFESSIONALS if p.id == pro_id)
            for unit, accepted in ((capacity, capacity > 0), (capacity + 1, False)):
                if unit == 0:
                    continue
                booking = new_booking(event, pro, *slots[s], unit)
                written = await record.add_confirmed(booking, 1, BookingConfirmed.of(booking.id, 1, booking_data(booking)))
                assert written is accepted, (s, pro.name, unit, capacity)


def new_booking(event, pro, start, end, unit: int) -> Booking:
    return Booking(
        id=uuid.uuid4(), event_id=event.id, event_name=event.name, slot_start=start, slot_end=end, status="confirmed",
        client_id=uuid.uuid4(), client_name="Client", client_email=None, client_timezone="UTC", professional_id=pro.id,
        professional_name=pro.name, professional_email=pro.email, professional_timezone="UTC", unit=unit, assignment={},
        idempotency_key=None, request_fingerprint="", sequence=1, reminder_at=None,
    )  # fmt: skip
