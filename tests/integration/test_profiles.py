"""A profile change takes effect on the next request, whatever token the client holds (SPEC §4):
an API client that never swaps its token sees its new timezone and name at once."""

import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.integration.helpers import add_shift, create_event, create_professional, local, sign_in_admin, wait_for_availability

UTC = ZoneInfo("UTC")


async def test_a_token_issued_before_a_profile_change_carries_the_change_from_the_next_request(api, system):
    admin = await sign_in_admin(api, system)
    day = date.today() + timedelta(days=5)
    event = await create_event(admin, timezone="UTC", start_date=day, end_date=day, opens_at="10:00", closes_at="12:00")
    pro, _ = await create_professional(api, admin)
    await add_shift(admin, event, local(day, 10, 0, UTC), local(day, 12, 0, UTC), 3, professional=pro)
    await wait_for_availability(api, event["id"], day, lambda b: b["reason"] is None)

    email = f"{uuid.uuid4().hex[:8]}@test.example"
    body = {"email": email, "password": "client-password", "name": "Before", "timezone": "UTC"}
    await api.call("POST", "/auth/register", expect=201, json=body)
    old_token = await api.sign_in(email, "client-password")  # kept for the whole test, never swapped
    query = {"event_id": event["id"], "date": day.isoformat()}
    assert (await old_token.call("GET", "/availability", params=query))["timezone"] == "UTC"  # read, and kept

    for zone, name in (("Asia/Tokyo", "After"), ("America/Lima", "Later still")):
        await old_token.call("PATCH", "/me", json={"timezone": zone, "name": name})
        seen = await old_token.call("GET", "/availability", params=query)  # the very next request
        assert seen["timezone"] == zone
        assert datetime.fromisoformat(seen["slots"][0]["start"]).utcoffset() == datetime.now(ZoneInfo(zone)).utcoffset()
        assert (await old_token.call("GET", "/me"))["name"] == name

    booked = await old_token.call(
        "POST", "/bookings", expect=201, json={"event_id": event["id"], "start": local(day, 10, 0, UTC).isoformat()}
    )
    assert booked["start"].endswith("-05:00")  # shown in Lima's time, the token says UTC
    as_admin = await admin.call("GET", f"/bookings/{booked['id']}")
    assert as_admin["client"]["name"] == "Later still"  # recorded as the client is now
