"""Inputs that used to answer 500 (issue 14): each is now a 422 problem document, through the
public entry, and nothing is written."""

import uuid
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from common.roles import Role
from tests.integration.helpers import add_shift, create_event, create_professional, local, sign_in_admin, wait_for_availability

UTC = ZoneInfo("UTC")


async def test_zone_folders_and_days_off_the_calendar_are_422_not_500(api, system):
    admin = await sign_in_admin(api, system)
    day = date.today() + timedelta(days=4)
    event = await create_event(admin, timezone="UTC", start_date=day, end_date=day, opens_at="10:00", closes_at="11:00")
    pro, _ = await create_professional(api, admin)
    await add_shift(admin, event, local(day, 10, 0, UTC), local(day, 11, 0, UTC), 1, professional=pro)
    await wait_for_availability(api, event["id"], day, lambda b: b["reason"] is None)

    availability = {
        "a folder of the zone database": {"date": day.isoformat(), "tz": "America"},
        "another folder": {"date": day.isoformat(), "tz": "Europe"},
        "a folder two deep": {"date": day.isoformat(), "tz": "America/Argentina"},
        "a data file of the database": {"date": day.isoformat(), "tz": "zone.tab"},
        "the first day of the calendar": {"date": "0001-01-01"},
        "the last day of the calendar": {"date": "9999-12-31"},
        "the last day seen from the east": {"date": "9999-12-31", "tz": "Pacific/Kiritimati"},
    }
    for case, params in availability.items():
        status, problem = await api.request("GET", "/availability", params={"event_id": event["id"], **params})
        assert (status, problem.get("code")) == (422, "validation_failed"), (case, status, problem)

    client = api.as_user(system.token_for(Role.CLIENT))
    for start in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59+00:00"):
        status, problem = await client.request("POST", "/bookings", json={"event_id": event["id"], "start": start})
        assert (status, problem.get("code")) == (422, "validation_failed"), (start, status, problem)
    for body in (
        {"event_id": event["id"], "start": "0001-01-01T00:00:00+14:00", "end": "0001-01-01T01:00:00+14:00"},
        {"event_id": event["id"], "start": "9999-12-31T22:00:00-14:00", "end": "9999-12-31T23:00:00-14:00"},
    ):
        status, problem = await admin.request("POST", "/shifts", json=body | {"professional_id": pro["id"]})
        assert (status, problem.get("code")) == (422, "validation_failed"), (body, status, problem)
    status, problem = await admin.request(
        "POST", "/events", json={"name": "Far", "timezone": "UTC", "start_date": "9999-12-31", "end_date": "9999-12-31",
                                 "opens_at": "09:00", "closes_at": "17:00", "slot_minutes": 30}
    )  # fmt: skip
    assert (status, problem.get("code")) == (422, "validation_failed"), problem
    for closes_at in (0, 61200, "17:00+01:00", "17:00:00", "24:00"):  # a number read as seconds, an offset: a 500 once
        status, problem = await admin.request(
            "POST", "/events", json={"name": "Odd", "timezone": "UTC", "start_date": day.isoformat(), "end_date": day.isoformat(),
                                     "opens_at": "09:00", "closes_at": closes_at, "slot_minutes": 30}
        )  # fmt: skip
        assert (status, problem.get("code")) == (422, "validation_failed"), (closes_at, status, problem)
        status, problem = await admin.request("PATCH", f"/events/{event['id']}", json={"closes_at": closes_at})
        assert (status, problem.get("code")) == (422, "validation_failed"), (closes_at, status, problem)
    assert (await client.call("GET", "/bookings"))["items"] == []  # nothing was booked on the way


async def test_an_account_in_a_zone_folder_is_refused(api, system):
    for zone in ("America", "Europe", "Etc", ""):
        email = f"tz-{uuid.uuid4().hex[:8]}@test.example"
        body = {"email": email, "password": "password-123", "name": "Tz", "timezone": zone}
        status, problem = await api.request("POST", "/auth/register", json=body)
        assert (status, problem.get("code")) == (422, "validation_failed"), (zone, status, problem)
        status, _ = await api.request("POST", "/auth/login", json={"email": email, "password": "password-123"})
        assert status == 401, zone  # no account was made
    me = api.as_user(system.token_for(Role.CLIENT))
    status, problem = await me.request("PATCH", "/me", json={"timezone": "America"})
    assert status in (422, 404), (status, problem)  # a token-only caller has no account; never a 500
