"""Redis holds derived state only: after losing it, a rebuild gives back the very same counters."""

import asyncio
import random
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from booking.adapters.capacity import CapacityStore
from common.roles import Role
from tests.integration.helpers import (
    add_shift,
    create_event,
    create_professional,
    decoded,
    local,
    sign_in_admin,
    wait_for_availability,
)

ZONE = ZoneInfo("Europe/Madrid")


async def random_history(api, system, seed: int) -> tuple[dict, list]:
    """An event with shifts created, changed and cancelled, and bookings made and cancelled, at random."""
    rng = random.Random(seed)
    admin = await sign_in_admin(api, system)
    first = datetime.now(ZONE).date() + timedelta(days=5)
    event = await create_event(
        admin, timezone=ZONE.key, start_date=first, end_date=first + timedelta(days=1), opens_at="09:00", closes_at="13:00"
    )
    pros = [await create_professional(api, admin, name=f"Dr. {n}") for n in ("Ana", "Ben", "Cai")]
    clients = [api.as_user(system.token_for(Role.CLIENT, name=f"Client {i}")) for i in range(6)]
    days = [first, first + timedelta(days=1)]
    shifts, bookings = [], []
    for _ in range(60):
        op = rng.choices(["shift", "change", "cancel_shift", "book", "cancel_booking"], weights=[4, 2, 1, 6, 2])[0]
        if op == "shift" or not shifts:
            _, pro = rng.choice(pros)
            day, start = rng.choice(days), rng.randrange(0, 7)
            status, body = await pro.request(
                "POST",
                "/shifts",
                json={
                    "event_id": event["id"],
                    "capacity": rng.randint(1, 3),
                    "start": (local(day, 9, 0, ZONE) + timedelta(minutes=30 * start)).isoformat(),
                    "end": (local(day, 9, 0, ZONE) + timedelta(minutes=30 * rng.randint(start + 1, 8))).isoformat(),
                },
            )
            if status == 201:
                shifts.append(body)
        elif op == "change":
            shift = rng.choice(shifts)
            start = datetime.fromisoformat(shift["start"])
            await admin.request(
                "PATCH",
                f"/shifts/{shift['id']}",
                json={
                    "capacity": rng.randint(1, 3),
                    "end": (start + timedelta(minutes=30 * rng.randint(1, 3))).isoformat(),
                },
            )
        elif op == "cancel_shift":
            await admin.request("DELETE", f"/shifts/{rng.choice(shifts)['id']}")
        elif op == "book":
            day, index = rng.choice(days), rng.randrange(0, 8)
            status, body = await rng.choice(clients).request(
                "POST",
                "/bookings",
                json={
                    "event_id": event["id"],
                    "start": (local(day, 9, 0, ZONE) + timedelta(minutes=30 * index)).isoformat(),
                },
            )
            if status == 201:
                bookings.append(body)
        elif bookings:
            await admin.request("POST", f"/bookings/{rng.choice(bookings)['id']}/cancel")
    assert len(shifts) >= 5 and len(bookings) >= 5, "the history should exercise both shifts and bookings"
    return event, days


async def settled_counters(store: CapacityStore, event_id, admin) -> dict:
    """The event's counters once the consumer has applied every shift change the shifts service made
    and the reassignments those changes caused are done (nothing moves for a second)."""
    listed = (await admin.call("GET", "/shifts", params={"event_id": str(event_id), "limit": "200"}))["items"]
    expected = {s["id"]: (s["capacity"], s["status"] == "active") for s in listed}
    previous = None
    for _ in range(300):
        state = decoded(await store.raw(event_id))
        applied = {k: (v["capacity"], v["active"]) for k, v in state["shifts"].items()}
        if applied == expected and state == previous and not state["holds"]:
            return state
        previous = state
        await asyncio.sleep(0.5 if applied == expected else 0.05)
    raise AssertionError(f"counters never settled: {applied} != {expected}")


async def forget_everything(redis, prefix: str) -> None:
    """What a Redis restart does to us (its data kept nowhere): every key of this system, gone."""
    keys = [key async for key in redis.scan_iter(match=f"{prefix}:*", count=1000)]
    await redis.delete(*keys)


async def test_losing_redis_and_rebuilding_gives_identical_counters(api, system, redis):
    event, days = await random_history(api, system, seed=20261125)
    store = CapacityStore(redis, system.settings.redis_key_prefix)
    admin = await sign_in_admin(api, system)
    event_id = uuid.UUID(event["id"])
    before = await settled_counters(store, event_id, admin)
    assert before["alloc"] and before["load"], "the history left capacity in use"
    availability_before = [
        await api.call("GET", "/availability", params={"event_id": event["id"], "date": d.isoformat()}) for d in days
    ]

    # The running booking service notices by itself and rebuilds from PostgreSQL.
    await forget_everything(redis, system.settings.redis_key_prefix)
    for _ in range(300):  # an answer kept from before may still be served for ANSWER_MAX_AGE_SECONDS
        if await store.is_built():
            break
        await asyncio.sleep(0.1)
    await wait_for_availability(api, event["id"], days[0], lambda body: True, timeout=30)
    assert decoded(await store.raw(event_id)) == before
    assert [
        await api.call("GET", "/availability", params={"event_id": event["id"], "date": d.isoformat()}) for d in days
    ] == availability_before

    # And the one command an operator runs does the same, beside the running instances.
    await forget_everything(redis, system.settings.redis_key_prefix)
    returncode, report = await system.command("booking", "rebuild")
    assert returncode == 0 and report["events"] >= 1 and report["bookings"] >= 1
    assert decoded(await store.raw(event_id)) == before


async def reconcile(system, event_id: str) -> dict:
    returncode, report = await system.command("booking", "reconcile", event_id)
    assert returncode == 0
    return report


async def test_reconcile_repairs_lasting_drift_and_not_bookings_in_flight(api, system, redis):
    admin = await sign_in_admin(api, system)
    day = datetime.now(ZONE).date() + timedelta(days=3)
    event = await create_event(admin, timezone=ZONE.key, start_date=day, end_date=day, opens_at="09:00", closes_at="12:00")
    for name in ("Dr. One", "Dr. Two"):
        _, pro = await create_professional(api, admin, name=name)
        await add_shift(pro, event, local(day, 9, 0, ZONE), local(day, 12, 0, ZONE), capacity=50)
    await wait_for_availability(api, event["id"], day, lambda a: all(s["remaining"] == 100 for s in a["slots"]))
    slots = [local(day, 9, 0, ZONE) + timedelta(minutes=30 * i) for i in range(6)]

    # A steady stream of bookings across the day while reconcile looks: nothing to repair.
    stop = asyncio.Event()

    async def book_until_stopped(n: int) -> int:
        client, made = api.as_user(system.token_for(Role.CLIENT, name=f"Stream {n}")), 0
        while not stop.is_set():
            status, _ = await client.request(
                "POST", "/bookings", json={"event_id": event["id"], "start": slots[made % 6].isoformat()}
            )
            made += status == 201
        return made

    streams = [asyncio.create_task(book_until_stopped(n)) for n in range(12)]
    await asyncio.sleep(0.5)
    try:
        during = [await reconcile(system, event["id"]) for _ in range(3)]
    finally:
        stop.set()
        booked = sum(await asyncio.gather(*streams))
    assert booked > 50 and [r["repaired"] for r in during] == [{}, {}, {}], during

    # Redis loses a booking from one slot's counter (as a lost write would): reconcile puts it back.
    store = CapacityStore(redis, system.settings.redis_key_prefix)
    keys = store.keys(uuid.UUID(event["id"]))
    slot_key = str(int(slots[2].timestamp()))
    right = await redis.hget(keys.remaining, slot_key)
    await redis.hset(keys.remaining, slot_key, int(right) + 1)
    repaired = await reconcile(system, event["id"])
    # Ours repairs it, unless the running instances' own reconcile came first: either way, once.
    assert repaired["repaired"] in ({event["id"]: {"remaining": [slot_key]}}, {})
    assert await redis.hget(keys.remaining, slot_key) == right
