"""The waitlist through the public API: waiting for a full slot, the freed unit offered to the
first waiter and held for them (nobody else can book it), claimed with the mail's link once, an
offer that runs out passed to the next waiter, leaving the queue, and every bad input a 4xx."""

import asyncio
import re
import uuid
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

from booking.adapters.capacity import CapacityStore
from common.roles import Role
from tests.integration.helpers import (
    add_shift,
    booking_rows,
    create_event,
    create_professional,
    local,
    sign_in_admin,
    slot_at,
    wait_for_availability,
)

ZONE = ZoneInfo("Asia/Kolkata")


async def full_slot(api, system):
    """An event two days ahead with one professional, one unit at 10:00, booked by a first client."""
    admin = await sign_in_admin(api, system)
    day = datetime.now(ZONE).date() + timedelta(days=2)
    event = await create_event(admin, timezone=ZONE.key, start_date=day, end_date=day, opens_at="10:00", closes_at="11:00")
    pro, _ = await create_professional(api, admin, name=f"Dr. {uuid.uuid4().hex[:4]}")
    ten = local(day, 10, 0, ZONE)
    await add_shift(admin, event, ten, local(day, 11, 0, ZONE), 1, professional=pro)
    await wait_for_availability(api, event["id"], day, lambda b: slot_at(b, ten)["remaining"] == 1)
    first = client(api, system)
    status, booking = await first.request("POST", "/bookings", json={"event_id": event["id"], "start": ten.isoformat()})
    assert status == 201
    return event, day, ten, first, booking


def client(api, system):
    return api.as_user(system.token_for(Role.CLIENT, name=f"Client {uuid.uuid4().hex[:4]}", timezone="Asia/Kolkata"))


async def join(me, event, start, email: str | None = None) -> tuple[int, dict]:
    body = {"event_id": event["id"], "start": start.isoformat()} | ({"email": email} if email else {})
    return await me.request("POST", "/waitlist", json=body)


async def entry_of(me, entry_id: str) -> dict:
    return next(e for e in (await me.call("GET", "/waitlist"))["items"] if e["id"] == entry_id)


async def until_status(me, entry_id: str, status: str, timeout: float = 10.0) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (entry := await entry_of(me, entry_id))["status"] != status:
        assert loop.time() < deadline, f"entry never became {status}: {entry}"
        await asyncio.sleep(0.1)
    return entry


def claim_link_in(system, address: str) -> tuple[str, str]:
    (offer,) = system.mail.wait_for(1, to=address, subject="A place is free for you", timeout=10)
    link = re.search(r"https?://\S+\?claim=\S+", offer.get_body(("plain",)).get_content()).group(0)
    query = parse_qs(urlparse(link).query)
    return query["claim"][0], query["token"][0]


async def test_a_freed_unit_is_offered_to_the_first_waiter_held_for_them_and_claimed_once_by_the_link(api, system, servers):
    event, day, ten, first, booking = await full_slot(api, system)
    second, third, latecomer = client(api, system), client(api, system), client(api, system)
    status, waiting = await join(second, event, ten, email="second@test.example")
    assert (status, waiting["status"], waiting["position"], waiting["offer_expires_at"]) == (201, "waiting", 1, None)
    assert waiting["start"] == ten.isoformat()
    assert (await join(second, event, ten))[1]["id"] == waiting["id"]  # once per slot: the same place
    status, behind = await join(third, event, ten)
    assert (status, behind["position"]) == (201, 2)

    await first.call("POST", f"/bookings/{booking['id']}/cancel")
    offered = await until_status(second, waiting["id"], "offered")
    assert offered["offer_expires_at"] is not None and offered["position"] is None
    # Held for the waiter: not free to anyone else (as a signed-in reader sees it: never kept at the entry).
    seen = await third.call("GET", "/availability", params={"event_id": event["id"], "date": day.isoformat()})
    assert slot_at(seen, ten)["remaining"] == 0
    status, refusal = await latecomer.request("POST", "/bookings", json={"event_id": event["id"], "start": ten.isoformat()})
    assert (status, refusal["code"]) == (409, "slot_unavailable")
    assert (await entry_of(third, behind["id"]))["position"] == 1

    entry_id, token = claim_link_in(system, "second@test.example")
    assert entry_id == waiting["id"]
    status, made = await api.request("POST", f"/waitlist/{entry_id}/claim", json={"token": token})  # not signed in
    assert (status, made["id"], made["start"], made["status"]) == (201, entry_id, ten.isoformat(), "confirmed")
    status, again = await api.request("POST", f"/waitlist/{entry_id}/claim", json={"token": token})
    assert (status, again["id"]) == (200, made["id"])  # the link books once
    assert (await entry_of(second, entry_id))["status"] == "booked"
    assert [b["id"] for b in (await second.call("GET", "/bookings"))["items"]] == [entry_id]
    rows = await booking_rows(
        servers, "SELECT id FROM bookings WHERE event_id = $1 AND status = 'confirmed'", uuid.UUID(event["id"])
    )
    assert [str(r["id"]) for r in rows] == [entry_id]
    returncode, report = await system.command("booking", "audit", event["id"])
    assert (returncode, report["clean"]) == (0, True)


async def test_a_unit_freed_under_a_crowd_of_bookers_goes_to_the_first_waiter_and_nobody_else(api, system, servers):
    """A new shift frees a unit at 10:00 (offered by the owner's watch, seconds later) while a crowd
    keeps trying to book it: nobody but the first waiter gets it, exactly one booking results."""
    event, day, ten, first, booking = await full_slot(api, system)
    admin = await sign_in_admin(api, system)
    waiters = [client(api, system) for _ in range(2)]
    entries = [(await join(w, event, ten))[1] for w in waiters]
    crowd = [client(api, system) for _ in range(20)]
    answers: list[int] = []

    async def keep_booking(me):
        while 201 not in answers and (await entry_of(waiters[0], entries[0]["id"]))["status"] == "waiting":
            answers.append((await me.request("POST", "/bookings", json={"event_id": event["id"], "start": ten.isoformat()}))[0])

    newcomer, _ = await create_professional(api, admin, name=f"Dr. {uuid.uuid4().hex[:4]}")
    crowding = [asyncio.create_task(keep_booking(c)) for c in crowd]
    await add_shift(admin, event, ten, local(day, 11, 0, ZONE), 1, professional=newcomer)
    await asyncio.wait_for(asyncio.gather(*crowding), 15)
    print(f"\nbooking attempts while the freed unit waited for its offer: {len(answers)}")
    assert answers and set(answers) <= {409, 429}  # full, or past the client's attempts a minute: never booked
    assert (await entry_of(waiters[1], entries[1]["id"]))["status"] == "waiting"
    status, _ = await waiters[0].request("POST", f"/waitlist/{entries[0]['id']}/claim", json={})  # signed in: no token needed
    assert status == 201
    confirmed = "SELECT id FROM bookings WHERE event_id = $1 AND status = 'confirmed' ORDER BY created_at"
    rows = await booking_rows(servers, confirmed, uuid.UUID(event["id"]))
    assert [str(r["id"]) for r in rows] == [booking["id"], entries[0]["id"]]
    returncode, report = await system.command("booking", "audit", event["id"])
    assert (returncode, report["clean"]) == (0, True)


async def test_an_offer_that_runs_out_passes_to_the_next_waiter_and_its_link_no_longer_books(api, system, redis):
    event, day, ten, first, booking = await full_slot(api, system)
    late, next_in_line = client(api, system), client(api, system)
    _, slow = await join(late, event, ten, email="slow@test.example")
    _, patient = await join(next_in_line, event, ten, email="patient@test.example")
    await first.call("POST", f"/bookings/{booking['id']}/cancel")
    await until_status(late, slow["id"], "offered")
    _, token = claim_link_in(system, "slow@test.example")

    # The offer's time runs out: its hold's expiry moved to now, as the clock would in 15 minutes.
    store = CapacityStore(redis, system.settings.redis_key_prefix)
    await redis.zadd(store.keys(uuid.UUID(event["id"])).hold_expiry, {slow["id"]: 0})
    await until_status(late, slow["id"], "expired")
    system.mail.wait_for(1, to="slow@test.example", subject="Your offer has expired", timeout=10)
    await until_status(next_in_line, patient["id"], "offered")
    status, refusal = await api.request("POST", f"/waitlist/{slow['id']}/claim", json={"token": token})
    assert (status, refusal["code"]) == (409, "no_offer")
    status, _ = await next_in_line.request("POST", f"/waitlist/{patient['id']}/claim", json={})
    assert status == 201


async def test_leaving_the_queue_and_an_offer_given_back_goes_to_the_next(api, system):
    event, day, ten, first, booking = await full_slot(api, system)
    a, b, c = client(api, system), client(api, system), client(api, system)
    _, ea = await join(a, event, ten)
    _, eb = await join(b, event, ten)
    _, ec = await join(c, event, ten)
    left = await b.call("DELETE", f"/waitlist/{eb['id']}")
    assert left["status"] == "withdrawn"
    assert (await entry_of(c, ec["id"]))["position"] == 2
    await first.call("POST", f"/bookings/{booking['id']}/cancel")
    await until_status(a, ea["id"], "offered")
    await a.call("DELETE", f"/waitlist/{ea['id']}")  # the offer given back: to the next waiter
    await until_status(c, ec["id"], "offered")


async def test_who_may_do_what_on_the_waitlist_and_every_bad_input_is_a_4xx(api, system):
    event, day, ten, first, booking = await full_slot(api, system)
    me, stranger = client(api, system), client(api, system)
    status, free = await join(me, event, ten + timedelta(minutes=30))
    assert (status, free["code"]) == (409, "slot_available")  # 10:30 has room: book it
    _, mine = await join(me, event, ten)
    assert (await stranger.request("DELETE", f"/waitlist/{mine['id']}"))[0] == 404
    assert (await stranger.request("POST", f"/waitlist/{mine['id']}/claim", json={}))[0] == 404
    assert (await api.request("POST", f"/waitlist/{mine['id']}/claim", json={}))[0] == 401
    assert (await api.request("POST", f"/waitlist/{mine['id']}/claim", json={"token": "forged.token"}))[0] == 401
    status, problem = await me.request("POST", f"/waitlist/{mine['id']}/claim", json={})
    assert (status, problem["code"]) == (409, "no_offer")  # nothing offered yet
    assert (await api.request("POST", "/waitlist", json={"event_id": event["id"], "start": ten.isoformat()}))[0] == 401
    for body, code in (
        ({"event_id": event["id"], "start": "soon"}, "validation_failed"),
        ({"event_id": event["id"], "start": local(day, 10, 5, ZONE).isoformat()}, "not_slot_start"),
        ({"event_id": str(uuid.uuid4()), "start": ten.isoformat()}, "unknown_event"),
        ({"event_id": event["id"], "start": ten.isoformat(), "email": "not an address"}, "validation_failed"),
        ({"start": ten.isoformat()}, "validation_failed"),
    ):
        status, problem = await me.request("POST", "/waitlist", json=body)
        assert 400 <= status < 500 and problem["code"] == code, (body, status, problem)
    assert (await me.request("DELETE", f"/waitlist/{uuid.uuid4()}"))[0] == 404
    assert (await me.request("POST", f"/waitlist/{uuid.uuid4()}/claim", json={"token": 5}))[0] == 422
