"""A month at a glance (``GET /availability/month``), through the public entry: each day as its own
answer sums it up, in one request, with an ETag; and what is refused."""

import asyncio
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from common.roles import Role
from tests.integration.helpers import add_shift, create_event, create_professional, local, sign_in_admin

UTC = ZoneInfo("UTC")


async def _month_when(api, event_id: str, month: str, predicate, timeout: float = 10.0, **params) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status, body = await api.request("GET", "/availability/month", params={"event_id": event_id, "month": month} | params)
        if status == 200 and predicate(body):
            return body
        assert asyncio.get_running_loop().time() < deadline, f"the month never matched; last answer {status}: {body}"
        await asyncio.sleep(0.05)


async def test_a_month_shows_each_day_as_its_own_answer_sums_it_up(api, system):
    admin = await sign_in_admin(api, system)
    first = (date.today().replace(day=1) + timedelta(days=62)).replace(day=1)  # a month wholly ahead
    month = first.strftime("%Y-%m")
    days = [first + timedelta(days=n) for n in (9, 10, 11, 12)]  # the event's four days
    event = await create_event(
        admin, timezone="UTC", start_date=days[0], end_date=days[-1], opens_at="10:00", closes_at="12:00", slot_minutes=60
    )
    pro, _ = await create_professional(api, admin)
    await add_shift(admin, event, local(days[1], 10, 0, UTC), local(days[1], 11, 0, UTC), 1, professional=pro)
    await add_shift(admin, event, local(days[2], 10, 0, UTC), local(days[2], 12, 0, UTC), 3, professional=pro)
    await admin.call(
        "POST", f"/events/{event['id']}/blackouts", expect=201,
        json={"start": local(days[3], 0, 0, UTC).isoformat(), "end": local(days[3], 23, 0, UTC).isoformat()},
    )  # fmt: skip
    client = api.as_user(system.token_for(Role.CLIENT))
    await client.call(
        "POST", "/bookings", expect=201, json={"event_id": event["id"], "start": local(days[1], 10, 0, UTC).isoformat()}
    )

    def settled(answer: dict) -> bool:
        by_day = {d["date"]: d for d in answer["days"]}
        return (
            by_day[days[2].isoformat()]["remaining"],
            by_day[days[1].isoformat()]["reason"],
            by_day[days[3].isoformat()]["reason"],
        ) == (6, "fully_booked", "blackout")

    answer = await _month_when(api, event["id"], month, settled)
    assert (answer["event_id"], answer["month"], answer["timezone"]) == (event["id"], month, "UTC")
    assert [d["date"] for d in answer["days"]] == [(first + timedelta(days=n)).isoformat() for n in range(len(answer["days"]))]
    assert len(answer["days"]) in (28, 29, 30, 31) and answer["days"][-1]["date"][:7] == month
    by_day = {d["date"]: (d["available"], d["remaining"], d["reason"]) for d in answer["days"]}
    assert by_day[days[0].isoformat()] == (False, 0, "no_shifts")
    assert by_day[days[1].isoformat()] == (False, 0, "fully_booked")
    assert by_day[days[2].isoformat()] == (True, 6, None)
    assert by_day[days[3].isoformat()] == (False, 0, "blackout")
    assert by_day[first.isoformat()] == (False, 0, "no_event")
    for day in days:  # each day as its own answer has it
        own = await client.call("GET", "/availability", params={"event_id": event["id"], "date": day.isoformat()})
        assert own["reason"] == by_day[day.isoformat()][2]
        assert sum(s["remaining"] for s in own["slots"] if s["status"] == "available") == by_day[day.isoformat()][1]

    # Seen from UTC+14, the event's third day (10:00-12:00 UTC) is 00:00-02:00 of the next local day.
    east = await _month_when(api, event["id"], month, lambda a: True, tz="Pacific/Kiritimati")
    assert east["timezone"] == "Pacific/Kiritimati"
    remaining_east = {d["date"]: d["remaining"] for d in east["days"]}
    assert (remaining_east[days[2].isoformat()], remaining_east[days[3].isoformat()]) == (0, 6)

    url, params = f"{api.base_url}/availability/month", {"event_id": event["id"], "month": month}
    async with api.http.get(url, params=params) as response:
        etag = response.headers["ETag"]
    async with api.http.get(url, params=params, headers={"If-None-Match": etag}) as response:
        assert response.status == 304 and await response.read() == b""
    await client.call(
        "POST", "/bookings", expect=201, json={"event_id": event["id"], "start": local(days[2], 11, 0, UTC).isoformat()}
    )
    changed = await _month_when(
        api, event["id"], month, lambda a: {d["date"]: d["remaining"] for d in a["days"]}[days[2].isoformat()] == 5
    )
    assert changed["days"][0] == answer["days"][0]  # what did not change, did not


async def test_a_month_that_is_not_one_is_a_422_and_an_unknown_event_a_404(api, system):
    admin = await sign_in_admin(api, system)
    event = await create_event(admin, timezone="UTC", start_date=date.today(), end_date=date.today())
    await _month_when(api, event["id"], "2026-01", lambda answer: True)  # the event has reached the counters
    for month in ("2026-13", "2026-00", "2026-1", "26-01", "1969-12", "3000-01", "2026-01-01", ""):
        status, problem = await api.request("GET", "/availability/month", params={"event_id": event["id"], "month": month})
        assert (status, problem.get("code")) == (422, "validation_failed"), (month, status, problem)
    status, problem = await api.request(
        "GET", "/availability/month", params={"event_id": event["id"], "month": "2026-01", "tz": "America"}
    )
    assert (status, problem.get("code")) == (422, "validation_failed")
    unknown = "00000000-0000-4000-8000-000000000000"
    status, problem = await api.request("GET", "/availability/month", params={"event_id": unknown, "month": "2026-01"})
    assert (status, problem.get("code")) == (404, "not_found")
    for month in ("1970-01", "2999-12"):  # the calendar's ends, seen from both sides of the date line
        for tz in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):
            status, answer = await api.request(
                "GET", "/availability/month", params={"event_id": event["id"], "month": month, "tz": tz}
            )
            assert status == 200 and all(d["reason"] == "no_event" for d in answer["days"]), (month, tz, status)
