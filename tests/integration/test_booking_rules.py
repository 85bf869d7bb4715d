"""Booking through the gateway: never overbooked, fair, idempotent, cancellable, reassigned."""

import asyncio
import random
import uuid
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from booking.adapters.capacity import CapacityStore
from common.roles import Role
from tests.integration.helpers import (
    add_shift,
    booking_rows,
    create_event,
    create_professional,
    deliveries_held,
    local,
    sign_in_admin,
    slot_at,
    statuses,
    wait_for_availability,
)

ZONE = ZoneInfo("Europe/Rome")


async def event_with_professionals(api, system, capacities: list[int], days_ahead: int = 3, opens="09:00", closes="17:00"):
    admin = await sign_in_admin(api, system)
    day = datetime.now(ZONE).date() + timedelta(days=days_ahead)
    event = await create_event(admin, timezone=ZONE.key, start_date=day, end_date=day, opens_at=opens, closes_at=closes)
    pros = []
    for i, capacity in enumerate(capacities):
        pro, _ = await create_professional(api, admin, name=f"Dr. {chr(65 + i)} {uuid.uuid4().hex[:4]}")
        h, m = map(int, opens.split(":"))
        ch, cm = map(int, closes.split(":"))
        await add_shift(admin, event, local(day, h, m, ZONE), local(day, ch, cm, ZONE), capacity, professional=pro)
        pros.append(pro)
    total = sum(capacities)
    await wait_for_availability(api, event["id"], day, lambda b: all(s["remaining"] == total for s in b["slots"]))
    return admin, event, day, pros


def client(api, system, name: str = "Client", email: str | None = None):
    return api.as_user(system.token_for(Role.CLIENT, name=name, email=email))


async def test_a_thousand_concurrent_attempts_on_ten_units_confirm_exactly_ten(api, system, servers, redis):
    _, event, day, pros = await event_with_professionals(api, system, [4, 3, 3], opens="10:00", closes="11:00")
    ten = local(day, 10, 0, ZONE)
    answers = await asyncio.gather(
        *(
            client(api, system, f"C{i}").request("POST", "/bookings", json={"event_id": event["id"], "start": ten.isoformat()})
            for i in range(1000)
        )
    )
    assert Counter(status for status, _ in answers) == {201: 10, 409: 990}
    rows = await booking_rows(
        servers, "SELECT professional_id, unit FROM bookings WHERE event_id = $1 AND status = 'confirmed'", uuid.UUID(event["id"])
    )
    per_professional = Counter(str(r["professional_id"]) for r in rows)
    assert per_professional == {pros[0]["id"]: 4, pros[1]["id"]: 3, pros[2]["id"]: 3}
    assert sorted((str(r["professional_id"]), r["unit"]) for r in rows) == sorted(
        (p["id"], unit) for p, n in zip(pros, [4, 3, 3], strict=True) for unit in range(1, n + 1)
    )
    store = CapacityStore(redis, system.settings.redis_key_prefix)
    known = await store.event(uuid.UUID(event["id"]))
    assert await store.professional_usage(known.data.id, known.schedule.slot_starting_at(ten)) == per_professional
    assert await store.holds(known.data.id) == []
    await wait_for_availability(api, event["id"], day, lambda b: slot_at(b, ten)["remaining"] == 0)


async def test_three_professionals_share_three_hundred_bookings_evenly_and_admins_can_see_why(api, system, servers):
    admin, event, day, pros = await event_with_professionals(api, system, [7, 7, 7])
    slots = [local(day, 9, 0, ZONE) + timedelta(minutes=30 * i) for i in range(16)]
    rng, confirmed = random.Random(4), []
    while len(confirmed) < 300:
        batch = [rng.choice(slots) for _ in range(min(20, 300 - len(confirmed)))]
        answers = await asyncio.gather(
            *(
                client(api, system).request("POST", "/bookings", json={"event_id": event["id"], "start": s.isoformat()})
                for s in batch
            )
        )
        confirmed += [body for status, body in answers if status == 201]
    counts = Counter(b["professional"]["id"] for b in confirmed)
    mean = 100
    print(f"\nfair assignment over 300 bookings: {sorted(counts.values())} (mean {mean})")
    assert set(counts) == {p["id"] for p in pros}
    assert all(abs(n - mean) <= 0.05 * mean for n in counts.values()), counts

    report = await admin.call("GET", "/bookings/distribution", params={"event_id": event["id"]})
    assert {p["id"]: p["bookings"] for p in report["professionals"]} == dict(counts)
    assert report["largest_deviation_from_mean"] <= 5
    audit = (await admin.call("GET", f"/bookings/{confirmed[-1]['id']}"))["assignment"]
    assert confirmed[-1]["professional"]["id"] in audit["eligible"] and 0 <= audit["random"] < 1
    chosen_load = audit["eligible"][confirmed[-1]["professional"]["id"]]
    assert chosen_load == min(audit["eligible"].values())  # the fewest bookings that day was preferred
    status, _ = await client(api, system).request("GET", "/bookings/distribution", params={"event_id": event["id"]})
    assert status == 403


async def test_racing_retries_with_one_idempotency_key_make_one_booking(api, system, servers):
    _, event, day, _ = await event_with_professionals(api, system, [5], opens="10:00", closes="11:00")
    me = client(api, system, "Retrier")
    body, key = {"event_id": event["id"], "start": local(day, 10, 0, ZONE).isoformat()}, f"key-{uuid.uuid4()}"
    answers = await asyncio.gather(
        *(me.request("POST", "/bookings", json=body, headers={"Idempotency-Key": key}) for _ in range(20))
    )
    assert {status for status, _ in answers} <= {200, 201} and [s for s, _ in answers].count(201) == 1
    assert len({b["id"] for _, b in answers}) == 1
    rows = await booking_rows(servers, "SELECT id FROM bookings WHERE idempotency_key = $1", key)
    assert [str(r["id"]) for r in rows] == [answers[0][1]["id"]]
    ten = local(day, 10, 0, ZONE)  # the losers gave their units back (within the bound on how far answers lag)
    await wait_for_availability(api, event["id"], day, lambda b: slot_at(b, ten)["remaining"] == 4)

    status, problem = await me.request(
        "POST", "/bookings", json=body | {"start": local(day, 10, 30, ZONE).isoformat()}, headers={"Idempotency-Key": key}
    )
    assert (status, problem["code"]) == (422, "idempotency_key_reused")


async def test_cancelling_gives_back_one_unit_once_and_only_owners_and_admins_may(api, system):
    admin, event, day, pros = await event_with_professionals(api, system, [1, 1], opens="10:00", closes="11:00")
    ten = local(day, 10, 0, ZONE)
    owner, stranger = client(api, system, "Owner"), client(api, system, "Stranger")
    booking = await owner.call("POST", "/bookings", expect=201, json={"event_id": event["id"], "start": ten.isoformat()})
    await wait_for_availability(api, event["id"], day, lambda b: slot_at(b, ten)["remaining"] == 1)
    status, _ = await stranger.request("POST", f"/bookings/{booking['id']}/cancel")
    assert status == 404
    cancelled = await owner.call("POST", f"/bookings/{booking['id']}/cancel")
    assert cancelled["status"] == "cancelled"
    again = await owner.call("POST", f"/bookings/{booking['id']}/cancel")
    assert again["status"] == "cancelled"
    # Exactly one unit back, though cancelled twice (two would never match: the wait would time out).
    await wait_for_availability(api, event["id"], day, lambda b: slot_at(b, ten)["remaining"] == 2)
    by_admin = await client(api, system).call(
        "POST", "/bookings", expect=201, json={"event_id": event["id"], "start": ten.isoformat()}
    )
    assert (await admin.call("POST", f"/bookings/{by_admin['id']}/cancel"))["status"] == "cancelled"


async def test_a_cancelled_shift_moves_its_bookings_or_flags_them_when_nobody_is_free(api, system):
    admin, event, day, pros = await event_with_professionals(api, system, [1, 1], opens="10:00", closes="11:00")
    ten = local(day, 10, 0, ZONE)
    email = f"{uuid.uuid4().hex[:8]}@test.example"
    me = client(api, system, "Moved Client", email)
    booking = await me.call(
        "POST", "/bookings", expect=201, json={"event_id": event["id"], "start": ten.isoformat(), "email": email}
    )
    first = booking["professional"]["id"]
    other = next(p for p in pros if p["id"] != first)
    shifts = (await admin.call("GET", "/shifts", params={"event_id": event["id"]}))["items"]
    shift_of = {s["professional_id"]: s["id"] for s in shifts}

    await admin.call("DELETE", f"/shifts/{shift_of[first]}")
    for _ in range(200):
        now = await me.call("GET", f"/bookings/{booking['id']}")
        if now["professional"]["id"] != first:
            break
        await asyncio.sleep(0.05)
    assert now["professional"]["id"] == other["id"] and now["status"] == "confirmed"
    moved_mail = system.mail.wait_for(1, to=email, timeout=10, subject="Your appointment has a new professional")
    assert other["name"] in moved_mail[0].get_body(("plain",)).get_content()
    lost = next(p["email"] for p in pros if p["id"] == first)
    (given_away,) = system.mail.wait_for(1, to=lost, timeout=10, subject="Appointment given to another professional")
    methods = [part.get_param("method") for part in given_away.walk() if part.get_content_type() == "text/calendar"]
    assert methods == ["CANCEL"]  # their calendar entry goes

    await admin.call("DELETE", f"/shifts/{shift_of[other['id']]}")
    for _ in range(200):
        now = await me.call("GET", f"/bookings/{booking['id']}")
        if now["status"] != "confirmed":
            break
        await asyncio.sleep(0.05)
    assert now["status"] == "needs_reschedule"  # kept, flagged: nothing silently dropped
    system.mail.wait_for(1, to=email, timeout=10, subject="Your appointment needs a new time")
    seen = await wait_for_availability(api, event["id"], day, lambda b: b["reason"] is not None)
    assert seen["reason"] == "no_shifts"


async def test_every_refusal_is_a_problem_document_saying_why(api, system):
    admin, event, day, _ = await event_with_professionals(api, system, [1], opens="10:00", closes="12:00")
    await admin.call("POST", f"/events/{event['id']}/blackouts", expect=201, json={"start_time": "11:00", "end_time": "11:30"})
    await wait_for_availability(api, event["id"], day, lambda b: statuses(b)["11:00"][0] == "blocked")
    me = client(api, system)
    ten = local(day, 10, 0, ZONE)
    await me.call("POST", "/bookings", expect=201, json={"event_id": event["id"], "start": ten.isoformat()})
    cases = {
        "full": (ten, 409, "slot_unavailable"),
        "blocked": (local(day, 11, 0, ZONE), 409, "slot_blocked"),
        "not a slot start": (ten + timedelta(minutes=10), 422, "not_slot_start"),
        "outside the event": (ten + timedelta(days=1), 422, "outside_event"),
        "before the event": (datetime.now(ZONE) - timedelta(days=1), 422, "outside_event"),
    }
    for case, (start, status, code) in cases.items():
        answer, problem = await me.request("POST", "/bookings", json={"event_id": event["id"], "start": start.isoformat()})
        assert (answer, problem["code"]) == (status, code), case
    _, full = await me.request("POST", "/bookings", json={"event_id": event["id"], "start": ten.isoformat()})
    assert [datetime.fromisoformat(s["start"]) for s in full["nearest_available"]] == [
        local(day, 10, 30, ZONE),
        local(day, 11, 30, ZONE),
    ]
    answer, problem = await me.request("POST", "/bookings", json={"event_id": str(uuid.uuid4()), "start": ten.isoformat()})
    assert (answer, problem["code"]) == (422, "unknown_event")

    today = datetime.now(ZoneInfo("UTC")).date()
    started = await create_event(admin, timezone="UTC", start_date=today, end_date=today, opens_at="00:00", closes_at="00:30")
    await wait_for_availability(api, started["id"], today, lambda b: len(b["slots"]) == 1)
    answer, problem = await me.request(
        "POST", "/bookings", json={"event_id": started["id"], "start": local(today, 0, 0, ZoneInfo("UTC")).isoformat()}
    )
    assert (answer, problem["code"]) == (422, "slot_in_past")


async def test_a_shift_cancelled_while_the_owner_lags_is_moved_or_flagged_once_applied_and_the_record_stays_clean(
    api, system, servers
):
    """The capacity-owner story, with what really applies changes held back: the booking service's
    queue of shift changes is suspended (a consumer that lags), the shift is cancelled (200), and a
    client books 09:00 on it, which the owner has not heard of yet (201). Once the change comes
    through, the owner flags that booking needs_reschedule (nobody else works then) within seconds,
    both parties are told, and the record's audit is clean."""
    admin, event, day, pros = await event_with_professionals(api, system, [1], opens="09:00", closes="10:00")
    nine = local(day, 9, 0, ZONE)
    shifts = (await admin.call("GET", "/shifts", params={"event_id": event["id"]}))["items"]
    me = client(api, system)
    async with deliveries_held(system.settings.rabbitmq_url, "booking.shift-changes"):
        await admin.call("DELETE", f"/shifts/{shifts[0]['id']}")
        status, booking = await me.request(
            "POST", "/bookings", json={"event_id": event["id"], "start": nine.isoformat(), "email": "lag@example.com"}
        )
        assert status == 201, booking
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while (await me.call("GET", f"/bookings/{booking['id']}"))["status"] != "needs_reschedule":
        assert loop.time() < deadline, "the cancel was never applied to the booking made on it"
        await asyncio.sleep(0.1)
    seen = await wait_for_availability(api, event["id"], day, lambda b: b["reason"] is not None)
    assert seen["reason"] == "no_shifts"
    system.mail.wait_for(1, to="lag@example.com", timeout=10, subject="Your appointment needs a new time")
    system.mail.wait_for(1, to=pros[0]["email"], timeout=10, subject="Appointment needs a new time")
    returncode, report = await system.command("booking", "audit", event["id"])
    assert (returncode, report["clean"], report["events"]) == (0, True, 1)
