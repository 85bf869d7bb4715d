"""Calendar feeds through the public entry: a private URL per person (clients and professionals)
listing their confirmed appointments as iCalendar, with the mails' UIDs, changing as they change,
served with an ETag; made anew, revoked, and stored only as a hash."""

import asyncio
import hashlib
import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar

from common.roles import Role
from tests.integration.helpers import (
    add_shift,
    booking_rows,
    create_event,
    create_professional,
    local,
    sign_in_admin,
    wait_for_availability,
)
from tests.integration.test_notifier import invite_of

UTC = ZoneInfo("UTC")


async def _feed(api, url: str, etag: str | None = None) -> tuple[int, str, Calendar | None]:
    """The feed as a calendar application fetches it: no sign-in, the URL is the key."""
    async with api.http.get(url, headers={"If-None-Match": etag} if etag else {}) as response:
        body = await response.read()
        if response.status != 200:
            return response.status, response.headers.get("ETag", ""), None
        assert response.content_type == "text/calendar"
        return 200, response.headers["ETag"], Calendar.from_ical(body)


def _entries(calendar: Calendar) -> dict[str, tuple[datetime, datetime, int, str]]:
    return {
        str(e["uid"]): (e.decoded("dtstart"), e.decoded("dtend"), int(e["sequence"]), str(e["summary"]))
        for e in calendar.walk("VEVENT")
    }


async def test_a_feed_lists_my_appointments_with_the_mails_uids_and_follows_their_changes(api, system, servers):
    admin = await sign_in_admin(api, system)
    day = date.today() + timedelta(days=8)
    event = await create_event(admin, timezone="UTC", start_date=day, end_date=day, opens_at="10:00", closes_at="12:00")
    pro, professional = await create_professional(api, admin, name="Dr. Feed")
    await add_shift(admin, event, local(day, 10, 0, UTC), local(day, 12, 0, UTC), 1, professional=pro)
    await wait_for_availability(api, event["id"], day, lambda a: a["reason"] is None)
    email = f"feed-{uuid.uuid4().hex[:8]}@test.example"
    me = api.as_user(system.token_for(Role.CLIENT, name="Fay Feed", email=email))
    first = await me.call(
        "POST",
        "/bookings",
        expect=201,
        json={"event_id": event["id"], "start": local(day, 10, 0, UTC).isoformat(), "email": email},
    )
    second = await me.call(
        "POST", "/bookings", expect=201, json={"event_id": event["id"], "start": local(day, 11, 0, UTC).isoformat()}
    )
    uid = {b["id"]: f"{b['id']}@{system.settings_defaults.mail_domain}" for b in (first, second)}

    made = await me.call("POST", "/me/calendar-feed", expect=201)
    url = made["url"]
    assert url.startswith(f"{system.public_url}/api/v1/calendar/") and url.endswith(".ics")
    status, etag, calendar = await _feed(api, url)
    assert status == 200 and etag.startswith('"')
    entries = _entries(calendar)
    assert set(entries) == set(uid.values())
    assert entries[uid[first["id"]]][:2] == (local(day, 10, 0, UTC), local(day, 10, 30, UTC))
    assert entries[uid[first["id"]]][3].endswith("appointment with Dr. Feed")
    # The same UID as the invite the confirmation mail carried: a calendar keeps one entry.
    (mail,) = await asyncio.to_thread(system.mail.wait_for, 1, 10, email)
    assert str(invite_of(mail).walk("VEVENT")[0]["uid"]) == uid[first["id"]]
    assert await _feed(api, url, etag) == (304, etag, None)  # unchanged: nothing to download

    # The professional's own feed lists the same appointments, with the client.
    pro_feed = (await professional.call("POST", "/me/calendar-feed", expect=201))["url"]
    pro_entries = _entries((await _feed(api, pro_feed))[2])
    assert set(pro_entries) == set(uid.values()) and pro_entries[uid[second["id"]]][3].endswith("appointment with Fay Feed")

    # Moved and cancelled: the feed follows.
    moved = await me.call(
        "POST", f"/bookings/{first['id']}/reschedule", json={"start": local(day, 10, 30, UTC).isoformat()},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )  # fmt: skip
    await me.call("POST", f"/bookings/{second['id']}/cancel")
    status, changed_etag, calendar = await _feed(api, url, etag)
    assert status == 200 and changed_etag != etag
    entries = _entries(calendar)
    assert list(entries) == [uid[first["id"]]]
    start, end, sequence, _ = entries[uid[first["id"]]]
    assert (start, end) == (datetime.fromisoformat(moved["start"]), local(day, 11, 0, UTC))
    assert sequence > 1  # a calendar takes the moved entry over the one it had

    # Only a hash of the token is kept.
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    (row,) = await booking_rows(
        servers, "SELECT token_hash FROM calendar_feeds WHERE token_hash = $1", hashlib.sha256(token.encode()).hexdigest()
    )
    assert token not in row["token_hash"]

    # A new URL replaces the old; a revoked one opens nothing.
    renewed = (await me.call("POST", "/me/calendar-feed", expect=201))["url"]
    assert renewed != url and (await _feed(api, url))[0] == 404 and (await _feed(api, renewed))[0] == 200
    await me.call("DELETE", "/me/calendar-feed", expect=204)
    assert (await _feed(api, renewed))[0] == 404
    status, problem = await me.request("DELETE", "/me/calendar-feed")
    assert (status, problem.get("code")) == (404, "not_found")


async def test_feeds_are_for_people_with_appointments_and_a_guessed_url_opens_nothing(api, system):
    admin = await sign_in_admin(api, system)
    status, problem = await admin.request("POST", "/me/calendar-feed")
    assert (status, problem.get("code")) == (403, "forbidden")
    status, problem = await api.request("POST", "/me/calendar-feed")
    assert (status, problem.get("code")) == (401, "unauthorized")
    for token in ("x" * 43, "short", "x" * 44, "..%2F" + "x" * 38):
        async with api.http.get(f"{system.public_url}/api/v1/calendar/{token}.ics") as response:
            assert response.status == 404, token
            assert (await response.json(content_type=None))["code"] == "not_found"
