"""Rescheduling through the public API: the new unit taken and the old one given back in one step,
the same professional when they have room, a full slot refused with nothing changed, a race with a
booking of the new slot won by one, a retried key moving once, and the mails that follow."""

import asyncio
import uuid
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar

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

ZONE = ZoneInfo("Europe/Lisbon")


async def scene(api, system, shifts: list[tuple[int, int, int]]):
    """An event three days ahead, 09:00–12:00 in half hours, and one professional per (from hour,
    to hour, capacity)."""
    admin = await sign_in_admin(api, system)
    day = datetime.now(ZONE).date() + timedelta(days=3)
    event = await create_event(admin, timezone=ZONE.key, start_date=day, end_date=day, opens_at="09:00", closes_at="12:00")
    pros = []
    for start, end, capacity in shifts:
        pro, _ = await create_professional(api, admin, name=f"Dr. {uuid.uuid4().hex[:4]}")
        await add_shift(admin, event, local(day, start, 0, ZONE), local(day, end, 0, ZONE), capacity, professional=pro)
        pros.append(pro)
    await wait_for_availability(api, event["id"], day, lambda b: b["reason"] is None and any(s["remaining"] for s in b["slots"]))
    return admin, event, day, pros


def client(api, system, email: str | None = None):
    return api.as_user(system.token_for(Role.CLIENT, name=f"Client {uuid.uuid4().hex[:4]}", email=email))


async def book(me, event, start, email: str | None = None) -> tuple[int, dict]:
    body = {"event_id": event["id"], "start": start.isoformat()} | ({"email": email} if email else {})
    return await me.request("POST", "/bookings", json=body)


async def usage_matches_the_record(system, redis, servers, event: dict, day) -> None:
    """Every slot of the day: the units in use per professional in Redis are the record's
    confirmed bookings, none held twice, none lost."""
    store = CapacityStore(redis, system.settings.redis_key_prefix)
    known = await store.event(uuid.UUID(event["id"]))
    rows = await booking_rows(
        servers, "SELECT slot_start, professional_id FROM bookings WHERE event_id = $1 AND status = 'confirmed'", known.data.id
    )
    for slot in known.schedule.slots_on_local_day(day, ZONE):
        in_record = Counter(str(r["professional_id"]) for r in rows if r["slot_start"] == slot.start)
        assert await store.professional_usage(known.data.id, slot) == dict(in_record), slot.start


async def test_a_reschedule_moves_the_booking_keeps_its_professional_and_updates_both_calendars(api, system, servers, redis):
    _, event, day, pros = await scene(api, system, [(9, 12, 1), (9, 12, 1)])
    nine, eleven = local(day, 9, 0, ZONE), local(day, 11, 0, ZONE)
    me = client(api, system)
    status, booking = await book(me, event, nine, email="mover@test.example")
    assert status == 201
    system.mail.wait_for(1, to="mover@test.example", timeout=10, subject="Your appointment is confirmed")

    moved = await me.call("POST", f"/bookings/{booking['id']}/reschedule", json={"start": eleven.isoformat()})
    assert (moved["id"], moved["start"], moved["status"]) == (booking["id"], eleven.isoformat(), "confirmed")
    assert moved["professional"] == booking["professional"]  # they had room at 11:00
    assert (await me.call("GET", f"/bookings/{booking['id']}"))["start"] == eleven.isoformat()
    seen = await wait_for_availability(api, event["id"], day, lambda b: slot_at(b, eleven)["remaining"] == 1)
    assert slot_at(seen, nine)["remaining"] == 2
    await usage_matches_the_record(system, redis, servers, event, day)

    [confirmation, update] = system.mail.wait_for(2, to="mover@test.example", timeout=10)
    assert update["Subject"] == "Your appointment has moved"
    first, second = (invite(m) for m in (confirmation, update))
    assert (str(second["method"]), vevent(second)["uid"]) == ("REQUEST", vevent(first)["uid"])
    assert vevent(second)["sequence"] > vevent(first)["sequence"]
    assert vevent(second).decoded("dtstart") == eleven
    pro_mails = system.mail.wait_for(2, to=pros_email(pros, moved), timeout=10)
    assert [m["Subject"] for m in pro_mails] == ["New appointment", "Appointment moved"]


async def test_a_reschedule_to_a_slot_only_another_professional_has_room_in_moves_it_to_them(api, system, servers, redis):
    _, event, day, pros = await scene(api, system, [(9, 10, 1), (10, 12, 1)])
    nine, ten = local(day, 9, 0, ZONE), local(day, 10, 0, ZONE)
    me = client(api, system)
    _, booking = await book(me, event, nine)
    assert booking["professional"]["id"] == pros[0]["id"]
    moved = await me.call("POST", f"/bookings/{booking['id']}/reschedule", json={"start": ten.isoformat()})
    assert moved["professional"]["id"] == pros[1]["id"]
    await usage_matches_the_record(system, redis, servers, event, day)
    lost = system.mail.wait_for(2, to=pros[0]["email"], timeout=10)
    assert [m["Subject"] for m in lost] == ["New appointment", "Appointment moved to another professional"]
    assert str(invite(lost[1])["method"]) == "CANCEL"
    gained = system.mail.wait_for(1, to=pros[1]["email"], timeout=10, subject="New appointment")
    assert str(invite(gained[0])["method"]) == "REQUEST"


async def test_a_reschedule_to_a_full_slot_is_refused_with_the_nearest_open_ones_and_changes_nothing(api, system, servers, redis):
    _, event, day, _ = await scene(api, system, [(9, 12, 1)])
    nine, ten = local(day, 9, 0, ZONE), local(day, 10, 0, ZONE)
    me, other = client(api, system), client(api, system)
    _, mine = await book(me, event, nine)
    assert (await book(other, event, ten))[0] == 201
    status, refusal = await me.request("POST", f"/bookings/{mine['id']}/reschedule", json={"start": ten.isoformat()})
    assert (status, refusal["code"]) == (409, "slot_unavailable")
    assert [s["start"] for s in refusal["nearest_available"]][0] in {
        local(day, 9, 30, ZONE).isoformat(),
        local(day, 10, 30, ZONE).isoformat(),
    }
    assert await me.call("GET", f"/bookings/{mine['id']}") == mine
    await usage_matches_the_record(system, redis, servers, event, day)


async def test_a_reschedule_racing_a_booking_for_the_last_unit_leaves_exactly_one_of_them_there(api, system, servers, redis):
    _, event, day, _ = await scene(api, system, [(9, 12, 1)])
    nine, eleven = local(day, 9, 0, ZONE), local(day, 11, 0, ZONE)
    for _ in range(5):
        me, rival = client(api, system), client(api, system)
        _, mine = await book(me, event, nine)
        (moved_status, moved), (booked_status, booked) = await asyncio.gather(
            me.request("POST", f"/bookings/{mine['id']}/reschedule", json={"start": eleven.isoformat()}),
            book(rival, event, eleven),
        )
        won = "reschedule" if moved_status == 200 else "booking"
        assert (moved_status, booked_status) == ((200, 409) if won == "reschedule" else (409, 201)), (moved, booked)
        rows = await booking_rows(
            servers,
            "SELECT id FROM bookings WHERE event_id = $1 AND status = 'confirmed' AND slot_start = $2",
            uuid.UUID(event["id"]),
            eleven,
        )
        assert len(rows) == 1
        await usage_matches_the_record(system, redis, servers, event, day)
        # Clear the way for the next round.
        admin = api.as_user(system.token_for(Role.ADMIN))
        for row in await booking_rows(
            servers, "SELECT id FROM bookings WHERE event_id = $1 AND status = 'confirmed'", uuid.UUID(event["id"])
        ):
            await admin.call("POST", f"/bookings/{row['id']}/cancel")
        await wait_for_availability(api, event["id"], day, lambda b: all(s["remaining"] == 1 for s in b["slots"]))
    returncode, report = await system.command("booking", "audit", event["id"])
    assert (returncode, report["clean"]) == (0, True)


async def test_a_reschedule_retried_with_its_key_moves_once(api, system, servers):
    _, event, day, _ = await scene(api, system, [(9, 12, 2)])
    nine, ten, eleven = local(day, 9, 0, ZONE), local(day, 10, 0, ZONE), local(day, 11, 0, ZONE)
    me = client(api, system)
    _, booking = await book(me, event, nine)
    path, key = f"/bookings/{booking['id']}/reschedule", {"Idempotency-Key": "move-1"}
    answers = await asyncio.gather(*(me.request("POST", path, json={"start": ten.isoformat()}, headers=key) for _ in range(4)))
    assert {status for status, _ in answers} == {200} and {body["start"] for _, body in answers} == {ten.isoformat()}
    # Meanwhile moved on without a key; the old key still means the old move, done once.
    await me.call("POST", path, json={"start": eleven.isoformat()})
    again = await me.call("POST", path, json={"start": ten.isoformat()}, headers=key)
    assert again["start"] == eleven.isoformat()
    status, refusal = await me.request("POST", path, json={"start": nine.isoformat()}, headers=key)
    assert (status, refusal["code"]) == (422, "idempotency_key_reused")
    moves = "SELECT count(*) AS n FROM outbox WHERE envelope->>'type' = 'booking.rescheduled' AND envelope->>'aggregate_id' = $1"
    events = await booking_rows(servers, moves, booking["id"])
    assert events[0]["n"] == 2  # 09:00 -> 10:00 once, then 10:00 -> 11:00


async def test_who_may_reschedule_what_and_every_bad_input_is_a_4xx(api, system):
    admin, event, day, pros = await scene(api, system, [(9, 12, 1)])
    nine, ten = local(day, 9, 0, ZONE), local(day, 10, 0, ZONE)
    me = client(api, system)
    _, booking = await book(me, event, nine)
    path = f"/bookings/{booking['id']}/reschedule"
    stranger, pro = client(api, system), api.as_user(system.token_for(Role.PROFESSIONAL))
    assert (await stranger.request("POST", path, json={"start": ten.isoformat()}))[0] == 404  # another's: as if absent
    assert (await pro.request("POST", path, json={"start": ten.isoformat()}))[0] == 403  # professionals move no bookings
    assert (await api.request("POST", path, json={"start": ten.isoformat()}))[0] == 401
    for body, code in (
        ({"start": "tomorrow"}, "validation_failed"),
        ({"start": local(day, 9, 10, ZONE).isoformat()}, "not_slot_start"),
        ({"start": local(day + timedelta(days=30), 9, 0, ZONE).isoformat()}, "outside_event"),
        ({"start": ten.isoformat(), "professional_id": pros[0]["id"]}, "validation_failed"),
        ({}, "validation_failed"),
    ):
        status, problem = await me.request("POST", path, json=body)
        assert 400 <= status < 500 and problem["code"] == code, (body, status, problem)
    by_admin = await admin.call("POST", path, json={"start": ten.isoformat()})
    assert datetime.fromisoformat(by_admin["start"]) == ten  # in the admin's own zone
    await me.call("POST", f"/bookings/{booking['id']}/cancel")
    status, problem = await me.request("POST", path, json={"start": nine.isoformat()})
    assert (status, problem["code"]) == (409, "booking_cancelled")


def invite(message) -> Calendar:
    (alternative,) = (p for p in message.iter_parts() if p.get_content_type() == "multipart/alternative")
    (inline,) = (p for p in alternative.iter_parts() if p.get_content_type() == "text/calendar")
    return Calendar.from_ical(inline.get_content())


def vevent(calendar: Calendar):
    (entry,) = calendar.walk("VEVENT")
    return entry


def pros_email(pros: list[dict], booking: dict) -> str:
    return next(p["email"] for p in pros if p["id"] == booking["professional"]["id"])
