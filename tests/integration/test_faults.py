"""Crashes and outages: no confirmed booking lost, nothing overbooked, every event delivered."""

import asyncio
import random
import subprocess
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import pytest

from booking.adapters.capacity import CapacityStore
from common.events import BookingConfirmed
from common.messaging import Broker
from tests.integration.helpers import add_shift, booking_rows, create_event, create_professional, local, sign_in_admin
from tests.integration.test_booking_rules import ZONE, client, event_with_professionals

pytestmark = pytest.mark.fault


async def test_bookings_survive_the_booking_service_being_killed_at_random_moments(api, system, servers, redis):
    _, event, day, pros = await event_with_professionals(api, system, [5, 5, 5], opens="10:00", closes="12:00")
    slots = [local(day, 10, 0, ZONE) + timedelta(minutes=30 * i) for i in range(4)]  # 60 units in all
    rng = random.Random(11)
    confirmed: list[dict] = []
    other_answers: Counter = Counter()
    stop = asyncio.Event()

    async def book_forever(worker: int) -> None:
        while not stop.is_set():
            me = client(api, system, f"Stream {worker}")  # many clients: the per-user rate limit is not under test
            try:
                status, body = await me.request(
                    "POST", "/bookings", json={"event_id": event["id"], "start": rng.choice(slots).isoformat()}
                )
            except Exception as exc:  # the entry may drop a connection while booking dies
                other_answers[type(exc).__name__] += 1
                continue
            if status == 201:
                confirmed.append(body)
            else:
                other_answers[status] += 1
            await asyncio.sleep(0.01)

    async def kill_and_restart() -> None:
        for _ in range(3):
            await asyncio.sleep(rng.uniform(0.3, 1.0))
            await system.stack.kill("booking")
            await asyncio.sleep(rng.uniform(0.1, 0.5))
            await system.stack.restart("booking")
        await asyncio.sleep(0.5)
        stop.set()

    await asyncio.gather(kill_and_restart(), *(book_forever(i) for i in range(8)))
    assert confirmed, "some bookings must have been confirmed"

    rows = await booking_rows(
        servers,
        "SELECT id, slot_start, professional_id, unit FROM bookings WHERE event_id = $1 AND status = 'confirmed'",
        uuid.UUID(event["id"]),
    )
    assert {b["id"] for b in confirmed} <= {str(r["id"]) for r in rows}  # every "confirmed" told is kept
    per_unit = Counter((r["slot_start"], r["professional_id"]) for r in rows)
    assert max(per_unit.values()) <= 5  # no professional over capacity in any slot

    # Holds the killed process left expire; reconcile repairs whatever drifted and reports it.
    await asyncio.sleep(float(system.settings.service_overrides["HOLD_SECONDS"]) + 0.5)
    assert (await system.command("booking", "reconcile", event["id"]))[0] == 0
    returncode, second = await system.command("booking", "reconcile", event["id"])
    assert (returncode, second["repaired"]) == (0, {})  # after one pass, nothing left to repair
    store = CapacityStore(redis, system.settings.redis_key_prefix)
    known = await store.event(uuid.UUID(event["id"]))
    assert await store.holds(known.data.id) == []
    for start in slots:
        in_database = Counter(str(r["professional_id"]) for r in rows if r["slot_start"] == start)
        assert await store.professional_usage(known.data.id, known.schedule.slot_starting_at(start)) == in_database
    print(f"\nkill test: {len(confirmed)} confirmed, other answers {dict(other_answers)}")


async def run(*command: str, env: dict | None = None) -> str:
    """Run a command without blocking the event loop (the test's own consumers live on it)."""
    done = await asyncio.to_thread(subprocess.run, command, env=env, check=True, capture_output=True, text=True, timeout=120)
    return done.stdout


async def rabbitmqctl(*args: str) -> None:
    await run("rabbitmqctl", *args)


async def test_every_booking_event_is_delivered_after_rabbitmq_comes_back(api, system, servers):
    _, event, day, _ = await event_with_professionals(api, system, [20], opens="10:00", closes="11:00")
    delivered: Counter = Counter()

    async def count(message: BookingConfirmed) -> None:
        delivered[(str(message.data.id), str(message.event_id))] += 1

    listener = Broker(servers.rabbitmq_url, "test-counter")
    await listener.connect()
    await listener.subscribe(f"test.confirmed.{uuid.uuid4().hex[:8]}", {BookingConfirmed: count})
    made = []
    try:
        await rabbitmqctl("stop_app")
        try:
            for i in range(12):  # booking goes on working without the broker
                made.append(
                    await client(api, system, f"Outage {i}").call(
                        "POST",
                        "/bookings",
                        expect=201,
                        json={"event_id": event["id"], "start": local(day, 10, 0, ZONE).isoformat()},
                    )
                )
        finally:
            await rabbitmqctl("start_app")
            await rabbitmqctl("await_startup")
        for _ in range(600):
            if {booking_id for booking_id, _ in delivered} >= {b["id"] for b in made}:
                break
            await asyncio.sleep(0.1)
    finally:
        await listener.close()
    got = Counter(booking_id for booking_id, _ in delivered)
    assert {b["id"] for b in made} <= set(got), f"missing: {({b['id'] for b in made}) - set(got)}"
    assert all(n == 1 for n in got.values()), got  # one event per booking, delivered once here


async def test_a_service_that_is_down_is_a_clear_503_at_the_public_entry(api, system):
    await system.stack.kill("availability")
    try:
        started = asyncio.get_running_loop().time()
        status, problem = await api.request("GET", "/availability", params={"event_id": str(uuid.uuid4()), "date": "2030-01-01"})
        assert (status, problem["code"]) == (503, "service_unavailable")
        assert "availability" in problem["detail"]
        assert asyncio.get_running_loop().time() - started < 6  # bounded by the entry's upstream timeout, never hung
    finally:
        await system.stack.restart("availability")
    status, _ = await api.request("GET", "/availability", params={"event_id": str(uuid.uuid4()), "date": "2030-01-01"})
    assert status == 404  # back: an unknown event again


async def test_booking_starts_and_books_while_rabbitmq_is_down_and_its_events_follow(api, system, servers):
    _, event, day, _ = await event_with_professionals(api, system, [5], opens="10:00", closes="11:00")
    delivered: set[str] = set()

    async def count(message: BookingConfirmed) -> None:
        delivered.add(str(message.data.id))

    listener = Broker(servers.rabbitmq_url, "test-start-counter")
    await listener.connect()
    await listener.subscribe(f"test.started.{uuid.uuid4().hex[:8]}", {BookingConfirmed: count})
    try:
        await rabbitmqctl("stop_app")
        try:
            await system.stack.kill("booking")
            await system.stack.restart("booking")  # ready without the broker
            booking = await client(api, system, "Early").call(
                "POST", "/bookings", expect=201, json={"event_id": event["id"], "start": local(day, 10, 0, ZONE).isoformat()}
            )
        finally:
            await rabbitmqctl("start_app")
            await rabbitmqctl("await_startup")
        for _ in range(600):
            if booking["id"] in delivered:
                break
            await asyncio.sleep(0.1)
    finally:
        await listener.close()
    assert booking["id"] in delivered


async def test_services_reconnect_at_once_and_a_professional_announced_then_can_be_given_a_shift(api, system, servers):
    """The broker drops every connection of ours (it stays up): each service reconnects within
    about a second and its outbox relay is woken then, so the gateway's announcement of a
    professional made at that moment reaches the shifts service while an admin's shift for them
    waits for it. With aio-pika's default 5 s between reconnects, the shift took seconds or was
    refused (422 unknown_professional) after the directory's 3 s wait."""
    admin = await sign_in_admin(api, system)
    utc = ZoneInfo("UTC")
    day = datetime.now(utc).date() + timedelta(days=4)
    event = await create_event(admin, timezone="UTC", start_date=day, end_date=day, opens_at="10:00", closes_at="11:00")
    vhost = urlsplit(servers.rabbitmq_url).path.removeprefix("/") or "/"
    await rabbitmqctl("close_all_connections", "--vhost", unquote(vhost), "reconnect test")
    started = time.monotonic()
    pro, _ = await create_professional(api, admin, name="Dr. After The Drop")
    shift = await add_shift(admin, event, local(day, 10, 0, utc), local(day, 11, 0, utc), professional=pro)
    took = time.monotonic() - started
    print(f"\nprofessional announced and given a shift {took:.2f} s after the broker dropped every connection")
    assert shift["professional"]["name"] == "Dr. After The Drop"
    assert took < 2.5
