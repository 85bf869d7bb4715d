"""Concurrent bookings through the gateway: capacity is never exceeded and Redis agrees with PostgreSQL."""

import asyncio
import uuid
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from booking.adapters.capacity import CapacityStore
from common.roles import Role
from tests.integration.helpers import (
    add_shift,
    create_event,
    create_professional,
    local,
    sign_in_admin,
    slot_at,
    wait_for_availability,
)


async def test_fifty_concurrent_bookings_of_five_units_confirm_exactly_five(api, system, servers, redis):
    zone = ZoneInfo("Europe/Berlin")
    admin = await sign_in_admin(api, system)
    day = datetime.now(zone).date() + timedelta(days=2)
    event = await create_event(
        admin, name="Rush", timezone=zone.key, start_date=day, end_date=day, opens_at="08:00", closes_at="12:00", slot_minutes=60
    )
    nine = local(day, 9, 0, zone)
    pros = []
    for name, capacity in (("Dr. Three", 3), ("Dr. Two", 2)):
        pro, _ = await create_professional(api, admin, name=name)
        await add_shift(admin, event, nine, nine + timedelta(hours=1), capacity, professional=pro)
        pros.append(pro)
    await wait_for_availability(api, event["id"], day, lambda body: slot_at(body, nine)["remaining"] == 5)

    clients = [api.as_user(system.token_for(Role.CLIENT, name=f"Client {i}")) for i in range(50)]
    answers = await asyncio.gather(
        *(c.request("POST", "/bookings", json={"event_id": event["id"], "start": nine.isoformat()}) for c in clients)
    )
    statuses = Counter(status for status, _ in answers)
    assert statuses == {201: 5, 409: 45}
    assert all(body["code"] == "slot_unavailable" for status, body in answers if status == 409)
    assigned = Counter(body["professional"]["name"] for status, body in answers if status == 201)
    assert assigned == {"Dr. Three": 3, "Dr. Two": 2}

    # The database holds exactly the confirmed bookings, and Redis's counters say the same.
    conn = await asyncpg.connect(servers.database_url("booking").replace("+asyncpg", ""))
    try:
        rows = await conn.fetch(
            "SELECT professional_id, count(*) AS n FROM bookings WHERE event_id = $1 AND status = 'confirmed' GROUP BY 1",
            uuid.UUID(event["id"]),
        )
    finally:
        await conn.close()
    in_database = {str(r["professional_id"]): r["n"] for r in rows}
    assert in_database == {pros[0]["id"]: 3, pros[1]["id"]: 2}
    store = CapacityStore(redis, system.settings.redis_key_prefix)
    known = await store.event(uuid.UUID(event["id"]))
    assert await store.professional_usage(known.data.id, known.schedule.slot_starting_at(nine)) == in_database
    assert await store.holds(known.data.id) == []  # every hold was confirmed
    availability = await wait_for_availability(api, event["id"], day, lambda body: True)
    nine_slot = slot_at(availability, nine)
    assert (nine_slot["status"], nine_slot["remaining"]) == ("full", 0)
    assert availability["reason"] == "fully_booked"
