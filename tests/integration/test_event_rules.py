"""An event's booking rules through the public API: minimum notice, a horizon and a professional's
daily maximum, each shown in availability with its reason and enforced by the booking itself."""

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from common.roles import Role
from tests.integration.helpers import (
    add_shift,
    booking_rows,
    create_event,
    create_professional,
    local,
    sign_in_admin,
    slot_at,
    statuses,
    wait_for_availability,
)

ZONE = ZoneInfo("America/Chicago")


async def event_with_shift(api, system, days_ahead: int, capacities=(1,), **rules):
    admin = await sign_in_admin(api, system)
    day = datetime.now(ZONE).date() + timedelta(days=days_ahead)
    event = await create_event(
        admin, timezone=ZONE.key, start_date=day, end_date=day, opens_at="09:00", closes_at="11:00", **rules
    )
    pros = []
    for capacity in capacities:
        pro, _ = await create_professional(api, admin, name=f"Dr. {uuid.uuid4().hex[:4]}")
        await add_shift(admin, event, local(day, 9, 0, ZONE), local(day, 11, 0, ZONE), capacity, professional=pro)
        pros.append(pro)
    return admin, event, day, pros


def client(api, system):
    return api.as_user(system.token_for(Role.CLIENT, name=f"Client {uuid.uuid4().hex[:4]}"))


async def book(api, system, event: dict, start: datetime) -> tuple[int, dict]:
    return await client(api, system).request("POST", "/bookings", json={"event_id": event["id"], "start": start.isoformat()})


async def test_minimum_notice_rules_out_the_slots_too_soon_in_availability_and_in_the_booking(api, system):
    admin, event, day, _ = await event_with_shift(api, system, days_ahead=2, capacities=(3,))
    assert (event["min_notice_minutes"], event["horizon_days"], event["max_per_professional_per_day"]) == (None, None, None)
    assert (event["waitlist_offer_minutes"], event["reminder_hours"]) == (15, 24)
    ten = local(day, 10, 0, ZONE)
    # A notice that reaches just past 10:00: 09:00 and 09:30 and 10:00 are too soon, 10:30 is not.
    notice = int((ten - datetime.now(UTC)).total_seconds() // 60) + 5
    updated = await admin.call("PATCH", f"/events/{event['id']}", json={"min_notice_minutes": notice})
    assert updated["min_notice_minutes"] == notice and updated["name"] == event["name"]

    day_answer = await wait_for_availability(api, event["id"], day, lambda b: statuses(b)["09:00"][0] == "blocked")
    assert statuses(day_answer) == {
        "09:00": ("blocked", 0), "09:30": ("blocked", 0), "10:00": ("blocked", 0), "10:30": ("available", 3),
    }  # fmt: skip
    assert day_answer["reason"] is None  # 10:30 can still be booked

    status, refusal = await book(api, system, event, ten)
    assert (status, refusal["code"], refusal["min_notice_minutes"]) == (422, "too_soon", notice)
    status, made = await book(api, system, event, ten + timedelta(minutes=30))
    assert status == 201, made

    await admin.call("PATCH", f"/events/{event['id']}", json={"min_notice_minutes": notice + 60})
    day_answer = await wait_for_availability(api, event["id"], day, lambda b: b["reason"] == "too_soon")
    assert {s for s, _ in statuses(day_answer).values()} == {"blocked"}

    cleared = await admin.call("PATCH", f"/events/{event['id']}", json={"min_notice_minutes": None, "name": None})
    assert cleared["min_notice_minutes"] is None and cleared["name"] == event["name"]  # a null name is left as it was
    await wait_for_availability(api, event["id"], day, lambda b: statuses(b)["09:00"] == ("available", 3))
    status, _ = await book(api, system, event, ten)
    assert status == 201


async def test_a_horizon_rules_out_the_days_too_far_ahead(api, system):
    _, event, day, _ = await event_with_shift(api, system, days_ahead=9, horizon_days=5)
    day_answer = await wait_for_availability(api, event["id"], day, lambda b: b["reason"] is not None)
    assert day_answer["reason"] == "too_far"
    assert {s for s, _ in statuses(day_answer).values()} == {"blocked"}
    status, refusal = await book(api, system, event, local(day, 9, 30, ZONE))
    assert (status, refusal["code"], refusal["horizon_days"]) == (422, "too_far", 5)


async def test_no_professional_takes_more_than_the_daily_maximum_and_a_slot_only_they_could_take_shows_full(api, system, servers):
    _, event, day, pros = await event_with_shift(api, system, days_ahead=3, capacities=(2, 2), max_per_professional_per_day=2)
    slots = [local(day, 9, 0, ZONE) + timedelta(minutes=30 * i) for i in range(4)]
    await wait_for_availability(api, event["id"], day, lambda b: all(r == 4 for _, r in statuses(b).values()))

    made = []
    for start in slots[:2]:
        for _ in range(2):
            status, booking = await book(api, system, event, start)
            assert status == 201, booking
            made.append(booking)
    assert Counter(b["professional"]["id"] for b in made) == {pros[0]["id"]: 2, pros[1]["id"]: 2}

    # Both professionals are at their maximum: 10:00 and 10:30 have four free units and none to give.
    day_answer = await wait_for_availability(api, event["id"], day, lambda b: b["reason"] is not None)
    assert day_answer["reason"] == "fully_booked"
    assert slot_at(day_answer, slots[3]) == slot_at(day_answer, slots[3]) | {"status": "full", "remaining": 0}
    status, refusal = await book(api, system, event, slots[3])
    assert (status, refusal["code"]) == (409, "slot_unavailable")

    # A cancel brings one professional below the maximum: a unit can be had again, from them.
    owner = made[0]
    cancelled_by = api.as_user(system.token_for(Role.ADMIN))
    await cancelled_by.call("POST", f"/bookings/{owner['id']}/cancel")
    await wait_for_availability(api, event["id"], day, lambda b: slot_at(b, slots[3])["remaining"] == 2)
    status, again = await book(api, system, event, slots[3])
    assert status == 201 and again["professional"]["id"] == owner["professional"]["id"]
    rows = await booking_rows(
        servers, "SELECT professional_id FROM bookings WHERE event_id = $1 AND status = 'confirmed'", uuid.UUID(event["id"])
    )
    assert Counter(str(r["professional_id"]) for r in rows) == {pros[0]["id"]: 2, pros[1]["id"]: 2}


async def test_rules_out_of_range_are_refused_with_a_problem_and_change_nothing(api, system):
    admin, event, _, _ = await event_with_shift(api, system, days_ahead=2)
    for bad in (
        {"min_notice_minutes": -1},
        {"horizon_days": 0},
        {"max_per_professional_per_day": 0},
        {"waitlist_offer_minutes": 0},
        {"reminder_hours": -1},
        {"reminder_hours": "soon"},
    ):
        status, problem = await admin.request("PATCH", f"/events/{event['id']}", json=bad)
        assert status == 422 and problem["code"] == "validation_failed", (bad, status, problem)
        status, problem = await admin.request(
            "POST", "/events", json={k: v for k, v in event.items() if k not in {"id", "blackouts"}} | bad
        )
        assert status == 422, (bad, status, problem)
    assert await admin.call("GET", f"/events/{event['id']}") == event


async def test_a_booking_is_due_a_reminder_its_event_s_lead_before_it_and_a_move_moves_it(api, system, servers):
    _, event, day, _ = await event_with_shift(api, system, days_ahead=4, capacities=(2,), reminder_hours=48)
    nine, ten = local(day, 9, 0, ZONE), local(day, 10, 0, ZONE)
    await wait_for_availability(api, event["id"], day, lambda b: b["reason"] is None)
    me = client(api, system)
    status, booking = await me.request("POST", "/bookings", json={"event_id": event["id"], "start": nine.isoformat()})
    assert status == 201
    await me.call("POST", f"/bookings/{booking['id']}/reschedule", json={"start": ten.isoformat()})

    _, near, near_day, _ = await event_with_shift(api, system, days_ahead=1, reminder_hours=72)  # closer than its lead
    await wait_for_availability(api, near["id"], near_day, lambda b: statuses(b)["10:30"][0] == "available")
    status, too_late = await me.request(
        "POST", "/bookings", json={"event_id": near["id"], "start": local(near_day, 9, 0, ZONE).isoformat()}
    )
    assert status == 201

    published = (
        "SELECT envelope->'data'->>'reminder_at' AS due FROM outbox WHERE envelope->>'aggregate_id' = $1 ORDER BY created_at"
    )
    due = [datetime.fromisoformat(r["due"]) for r in await booking_rows(servers, published, booking["id"])]
    assert due == [nine - timedelta(hours=48), ten - timedelta(hours=48)]  # confirmed, then rescheduled
    assert [r["due"] for r in await booking_rows(servers, published, too_late["id"])] == [None]
