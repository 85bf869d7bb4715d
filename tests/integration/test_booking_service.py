"""The booking service's use cases called directly, on real PostgreSQL and Redis, where HTTP
cannot make requests collide reliably."""

import asyncio
import uuid
from datetime import UTC, datetime, time

import pytest

from booking.api import BookingIn
from common.auth import Identity
from common.roles import Role
from tests.factories import event_data, message, professional, shift_data
from tests.integration.booking_parts import booking_parts


async def test_racing_retries_with_one_key_wait_for_the_first_and_get_its_booking(servers, redis, key_prefix):
    """Twenty concurrent calls with one key, on a slot with five units: without serialising them,
    most would pass the "already booked?" check together and meet a full slot."""
    event = event_data()
    start = datetime.combine(event.start_date, time(9), event.schedule().zone)
    pro = professional("Ada")
    client = Identity(id=uuid.uuid4(), role=Role.CLIENT, name="Retrier")
    async with booking_parts(servers, redis, key_prefix) as parts:
        store = parts.store
        shift = shift_data(event, pro, start, start.replace(hour=10), capacity=5)
        await parts.apply(message("event.created", event.id, 1, event))
        await parts.apply(message("shift.created", shift.id, 1, shift))
        results = await asyncio.gather(
            *(parts.service.book(client, BookingIn(event_id=event.id, start=start), "same-key") for _ in range(20))
        )
    assert len({booking.id for booking, _ in results}) == 1
    assert [created for _, created in results].count(True) == 1
    known = await store.event(event.id)
    nine = known.schedule.slot_starting_at(start)
    assert await store.professional_usage(event.id, nine) == {str(pro.id): 1}  # every loser gave its unit back
    assert await store.holds(event.id) == []


async def test_postgresql_refuses_a_second_confirmed_booking_on_one_unit_whatever_redis_says(system, servers):
    import asyncpg

    conn = await asyncpg.connect(servers.database_url("booking").replace("+asyncpg", ""))
    columns = (
        "id, event_id, event_name, slot_start, slot_end, status, client_id, client_name, client_timezone, "
        "professional_id, professional_name, professional_timezone, unit, assignment, request_fingerprint, sequence"
    )
    event_id, pro, start = uuid.uuid4(), uuid.uuid4(), datetime(2030, 1, 7, 9, tzinfo=UTC)
    insert = (
        f"INSERT INTO bookings ({columns}) VALUES ($1, $2, 'E', $3, $4, $5, $6, 'C', 'UTC', $7, 'P', 'UTC', $8, '{{}}', 'f', 1)"
    )
    try:
        await conn.execute(insert, uuid.uuid4(), event_id, start, start, "confirmed", uuid.uuid4(), pro, 1)
        await conn.execute(insert, uuid.uuid4(), event_id, start, start, "confirmed", uuid.uuid4(), pro, 2)
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(insert, uuid.uuid4(), event_id, start, start, "confirmed", uuid.uuid4(), pro, 1)
        await conn.execute(
            insert, uuid.uuid4(), event_id, start, start, "cancelled", uuid.uuid4(), pro, 1
        )  # cancelled ones free it
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(insert, uuid.uuid4(), event_id, start, start, "confirmed", uuid.uuid4(), pro, 0)
    finally:
        await conn.execute("DELETE FROM bookings WHERE event_id = $1", event_id)
        await conn.close()
