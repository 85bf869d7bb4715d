"""Availability and the rules behind it, through the gateway on the running system."""

import asyncio
import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp
from multidict import CIMultiDict

from availability.handlers.http import EDGE_KEEP_HEADER
from availability.settings import Settings
from common.roles import Role
from tests.integration.helpers import (
    add_shift,
    create_event,
    create_professional,
    local,
    scrape,
    sign_in_admin,
    statuses,
    total,
    wait_for_availability,
)

UTC = ZoneInfo("UTC")
ANSWER_MAX_AGE = Settings.model_fields["answer_max_age_seconds"].default  # the bound, as the system runs it


async def test_shift_rules_refuse_bad_shifts_with_problems_and_write_nothing(api, system):
    admin = await sign_in_admin(api, system)
    day = date.today() + timedelta(days=3)
    event = await create_event(admin, timezone="UTC", start_date=day, end_date=day)
    _, pro = await create_professional(api, admin)
    other, _ = await create_professional(api, admin, name="Dr. Other")

    def shift(start: datetime, end: datetime, **extra) -> dict:
        return {"event_id": event["id"], "start": start.isoformat(), "end": end.isoformat()} | extra

    good = await pro.call("POST", "/shifts", expect=201, json=shift(local(day, 10, 0, UTC), local(day, 12, 0, UTC)))
    refusals = {
        "not on a boundary": (shift(local(day, 13, 15, UTC), local(day, 14, 0, UTC)), 422, "not_on_slot_boundaries"),
        "before opening": (shift(local(day, 8, 0, UTC), local(day, 9, 30, UTC)), 422, "not_on_slot_boundaries"),
        "after closing": (shift(local(day, 16, 30, UTC), local(day, 17, 30, UTC)), 422, "not_on_slot_boundaries"),
        "outside the dates": (
            shift(local(day, 10, 0, UTC) + timedelta(days=1), local(day, 11, 0, UTC) + timedelta(days=1)),
            422,
            "outside_event",
        ),
        "end before start": (shift(local(day, 14, 0, UTC), local(day, 13, 0, UTC)), 422, "invalid_shift"),
        "no capacity": (shift(local(day, 13, 0, UTC), local(day, 14, 0, UTC), capacity=0), 422, "validation_failed"),
        "absurd capacity": (shift(local(day, 13, 0, UTC), local(day, 14, 0, UTC), capacity=100000), 422, "validation_failed"),
        "overlapping": (shift(local(day, 11, 30, UTC), local(day, 13, 0, UTC)), 409, "shift_overlap"),
        "unknown event": (
            shift(local(day, 13, 0, UTC), local(day, 14, 0, UTC)) | {"event_id": str(uuid.uuid4())},
            422,
            "unknown_event",
        ),
        "someone else's": (shift(local(day, 13, 0, UTC), local(day, 14, 0, UTC), professional_id=other["id"]), 403, "forbidden"),
        "unknown field": (shift(local(day, 13, 0, UTC), local(day, 14, 0, UTC), colour="red"), 422, "validation_failed"),
    }
    for case, (body, status, code) in refusals.items():
        answer_status, problem = await pro.request("POST", "/shifts", json=body)
        assert (answer_status, problem.get("code")) == (status, code), case
        assert problem["type"].endswith(code) and problem.get("detail") or problem.get("errors"), case

    status, problem = await pro.request("PATCH", f"/shifts/{good['id']}", json={"end": local(day, 17, 30, UTC).isoformat()})
    assert (status, problem["code"]) == (422, "not_on_slot_boundaries")
    listed = await pro.call("GET", "/shifts", params={"event_id": event["id"]})
    assert [(s["id"], s["start"], s["end"], s["capacity"]) for s in listed["items"]] == [
        (good["id"], good["start"], good["end"], 1)
    ]  # nothing partial was written by any refusal
    status, _ = await api.as_user(system.token_for(Role.PROFESSIONAL)).request("GET", f"/shifts/{good['id']}")
    assert status == 404  # another professional's shift is not there for them


async def test_event_changes_blackouts_and_shift_changes_take_effect(api, system):
    admin = await sign_in_admin(api, system)
    zone = ZoneInfo("Europe/Paris")
    day = datetime.now(zone).date() + timedelta(days=4)
    event = await create_event(admin, timezone=zone.key, start_date=day, end_date=day, opens_at="09:00", closes_at="12:00")
    _, pro = await create_professional(api, admin)
    shift = await add_shift(pro, event, local(day, 9, 0, zone), local(day, 11, 0, zone), capacity=2)
    seen = await wait_for_availability(api, event["id"], day, lambda b: statuses(b).get("10:30") == ("available", 2))
    assert statuses(seen) == {
        "09:00": ("available", 2),
        "09:30": ("available", 2),
        "10:00": ("available", 2),
        "10:30": ("available", 2),
        "11:00": ("full", 0),
        "11:30": ("full", 0),
    }

    # Longer hours appear; hours that would strand the shift are refused.
    await admin.call("PATCH", f"/events/{event['id']}", json={"closes_at": "13:00"})
    await wait_for_availability(api, event["id"], day, lambda b: len(b["slots"]) == 8)
    status, problem = await admin.request("PATCH", f"/events/{event['id']}", json={"opens_at": "10:00"})
    assert (status, problem["code"], problem["shift_ids"]) == (409, "shifts_outside_event", [shift["id"]])
    for bad_time in ({"opens_at": "09:00+01:00"}, {"closes_at": "25:00"}):  # local times carry no offset
        status, problem = await admin.request("PATCH", f"/events/{event['id']}", json=bad_time)
        assert (status, problem["code"]) == (422, "validation_failed"), bad_time
    status, problem = await admin.request("PATCH", f"/events/{event['id']}", json={"slot_minutes": 15})
    assert (status, problem["code"]) == (409, "event_has_shifts")

    # A daily lunch blackout and a one-off one block their slots, whatever capacity they have.
    lunch = await admin.call(
        "POST", f"/events/{event['id']}/blackouts", expect=201, json={"start_time": "10:00", "end_time": "10:30"}
    )
    one_off = await admin.call(
        "POST",
        f"/events/{event['id']}/blackouts",
        expect=201,
        json={
            "start": local(day, 9, 15, zone).isoformat(),
            "end": local(day, 9, 45, zone).isoformat(),
            "reason": "fire drill",
        },
    )
    seen = await wait_for_availability(
        api, event["id"], day, lambda b: statuses(b)["10:00"][0] == "blocked" and statuses(b)["09:00"][0] == "blocked"
    )
    assert [statuses(seen)[t] for t in ("09:00", "09:30", "10:00", "10:30")] == [
        ("blocked", 0),
        ("blocked", 0),
        ("blocked", 0),
        ("available", 2),
    ]
    await admin.call("DELETE", f"/events/{event['id']}/blackouts/{one_off['id']}", expect=204)
    await wait_for_availability(api, event["id"], day, lambda b: statuses(b)["09:00"] == ("available", 2))

    # Shrinking and cancelling the shift follow through; then the day says why nothing is there.
    await pro.call("PATCH", f"/shifts/{shift['id']}", json={"end": local(day, 10, 0, zone).isoformat(), "capacity": 1})
    seen = await wait_for_availability(api, event["id"], day, lambda b: statuses(b)["09:30"] == ("available", 1))
    assert statuses(seen)["10:30"] == ("full", 0)
    await pro.call("DELETE", f"/shifts/{shift['id']}")
    seen = await wait_for_availability(api, event["id"], day, lambda b: b["reason"] is not None)
    assert seen["reason"] == "no_shifts"
    await admin.call("DELETE", f"/events/{event['id']}/blackouts/{lunch['id']}", expect=204)

    outside = await api.call(
        "GET", "/availability", params={"event_id": event["id"], "date": (day + timedelta(days=1)).isoformat()}
    )
    assert (outside["slots"], outside["reason"]) == ([], "no_event")
    status, problem = await api.request("GET", "/availability", params={"event_id": str(uuid.uuid4()), "date": day.isoformat()})
    assert (status, problem["code"]) == (404, "not_found")


async def test_a_dst_day_seen_from_a_half_hour_zone_spans_two_event_days(api, system):
    admin = await sign_in_admin(api, system)
    new_york, kolkata = ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata")
    spring_forward = date(2027, 3, 14)
    event = await create_event(
        admin,
        timezone=new_york.key,
        start_date=spring_forward - timedelta(days=1),
        end_date=spring_forward,
        opens_at="00:00",
        closes_at="23:30",
    )
    _, pro = await create_professional(api, admin)
    for day in (spring_forward - timedelta(days=1), spring_forward):
        await add_shift(pro, event, local(day, 0, 0, new_york), local(day, 23, 30, new_york))
    in_new_york = await wait_for_availability(api, event["id"], spring_forward, lambda b: b["reason"] is None)
    assert len(in_new_york["slots"]) == 45  # 23:30 of opening on a 23-hour day, in 30-minute slots
    assert in_new_york["slots"][0]["start"] == "2027-03-14T00:00:00-05:00"
    assert in_new_york["slots"][-1]["start"] == "2027-03-14T23:00:00-04:00"
    assert all(s["status"] == "available" for s in in_new_york["slots"])

    # Kolkata's 14 March is 18:30 UTC on the 13th to 18:30 UTC on the 14th: the end of New York's
    # 13th (20 slots) and the start of its 14th (27 slots).
    in_kolkata = await api.call(
        "GET", "/availability", params={"event_id": event["id"], "date": spring_forward.isoformat(), "tz": kolkata.key}
    )
    assert in_kolkata["timezone"] == "Asia/Kolkata" and len(in_kolkata["slots"]) == 47
    assert in_kolkata["slots"][0]["start"] == "2027-03-14T00:00:00+05:30"
    assert in_kolkata["slots"][-1]["start"] == "2027-03-14T23:30:00+05:30"

    # A signed-in client's own timezone is the default, also right after they change it.
    email = f"{uuid.uuid4().hex[:8]}@test.example"
    await api.call("POST", "/auth/register", expect=201, json={"email": email, "password": "password-123", "name": "Tz"})
    client = await api.sign_in(email, "password-123")
    day_query = {"event_id": event["id"], "date": spring_forward.isoformat()}
    assert (await client.call("GET", "/availability", params=day_query))["timezone"] == "UTC"
    profile = await client.call("PATCH", "/me", json={"timezone": "Asia/Kolkata"})
    assert profile["timezone"] == "Asia/Kolkata"
    client = api.as_user(profile["access_token"])
    assert await client.call("GET", "/availability", params=day_query) == in_kolkata
    status, problem = await client.request("PATCH", "/me", json={"timezone": "Europe/Atlantis"})
    assert (status, problem["code"]) == (422, "validation_failed")


async def test_a_burst_beyond_the_redis_pool_waits_instead_of_failing(api, system):
    """More requests at once than the service keeps Redis connections: each waits for one (it was a 500)."""
    from common.web import REDIS_CONNECTIONS

    admin = await sign_in_admin(api, system)
    day = date.today() + timedelta(days=3)
    event = await create_event(admin, timezone="UTC", start_date=day, end_date=day)
    url = f"{system.settings.url_of('availability')}/availability"
    params = {"event_id": event["id"], "date": day.isoformat()}
    await wait_for_availability(api, event["id"], day, lambda a: len(a["slots"]) == 16)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def get() -> int:
            async with http.get(url, params=params) as response:
                return response.status

        answers = await asyncio.gather(*(get() for _ in range(2 * REDIS_CONNECTIONS + 50)))
    assert set(answers) == {200}


async def _a_day_with_two_units_at_ten(api, system) -> tuple[dict, date, str, dict]:
    """An event of one day with one professional's two units at 10:00, as availability shows it:
    the event, the day, and the day's URL and query through the entry."""
    admin = await sign_in_admin(api, system)
    day = date.today() + timedelta(days=5)
    event = await create_event(admin, timezone="UTC", start_date=day, end_date=day, opens_at="10:00", closes_at="11:00")
    pro, _ = await create_professional(api, admin)
    await add_shift(admin, event, local(day, 10, 0, UTC), local(day, 11, 0, UTC), 2, professional=pro)
    await wait_for_availability(api, event["id"], day, lambda b: b["reason"] is None)
    return event, day, f"{api.base_url}/availability", {"event_id": event["id"], "date": day.isoformat()}


async def test_an_unchanged_day_answers_304_to_its_etag_and_a_booking_gives_it_a_new_one(api, system):
    event, day, url, params = await _a_day_with_two_units_at_ten(api, system)

    async def get(if_none_match: str | None = None) -> tuple[int, str, bytes]:
        headers = {"If-None-Match": if_none_match} if if_none_match else {}
        async with api.http.get(url, params=params, headers=headers) as response:
            return response.status, response.headers.get("ETag", ""), await response.read()

    status, etag, body = await get()
    assert status == 200 and etag.startswith('"') and body
    assert await get(etag) == (304, etag, b"")  # through the public entry: no body
    assert (await get(f'"something-else", W/{etag}'))[0] == 304  # a list, and a weak form, match too
    assert (await get('"something-else"'))[0] == 200
    client = api.as_user(system.token_for(Role.CLIENT))
    ten = local(day, 10, 0, UTC).isoformat()
    await client.call("POST", "/bookings", expect=201, json={"event_id": event["id"], "start": ten})
    booked = asyncio.get_running_loop().time()
    while (answer := await get(etag))[0] == 304:  # the entry may keep the old answer for its part of the bound
        assert asyncio.get_running_loop().time() - booked < ANSWER_MAX_AGE, "the booking never changed the answer"
        await asyncio.sleep(0.005)
    status, changed, body = answer  # the counters moved: the old tag no longer matches
    assert status == 200 and changed != etag and b'"remaining":1' in body


async def test_the_entry_keeps_answers_for_its_part_of_the_bound_and_only_for_plain_reads(api, system):
    """The entry serves kept answers itself (the service is not asked) for the milliseconds the
    service allows, per path and query, to anonymous readers only, and leaves the service every
    request it must judge."""
    _, _, url, params = await _a_day_with_two_units_at_ten(api, system)

    async def get(**headers: str) -> tuple[int, CIMultiDict[str], bytes]:
        async with api.http.get(url, params=params, headers=headers) as response:
            return response.status, response.headers.copy(), await response.read()

    def asked(samples) -> float:
        return total(samples, "availability", "http_server_request_duration_seconds_count", route="/availability")

    before = await scrape(system)
    reads = [await get() for _ in range(40)]
    after = await scrape(system)
    assert {(status, body) for status, _, body in reads} == {(200, reads[0][2])}
    assert all(EDGE_KEEP_HEADER not in headers and headers["ETag"] == reads[0][1]["ETag"] for _, headers, _ in reads)
    assert all(headers["Cache-Control"] == "no-cache" and headers["X-Correlation-ID"] for _, headers, _ in reads)
    assert asked(after) - asked(before) < 20, "the entry kept nothing: every read reached the service"
    async with api.http.get(f"{system.settings.url_of('availability')}/availability", params=params) as direct:
        keep = Settings.model_fields["edge_keep_seconds"].default
        assert direct.headers[EDGE_KEEP_HEADER] == str(round(keep * 1000))  # what the entry is told, and takes off

    # The service is asked for every read with a correlation id of the client's (it checks and
    # echoes it), and whenever an If-None-Match is not the kept ETag; the kept one is answered 304.
    etag = reads[0][1]["ETag"]
    before = await scrape(system)
    for _ in range(10):
        status, headers, _ = await get(**{"X-Correlation-ID": "mine-1"})
        assert (status, headers["X-Correlation-ID"]) == (200, "mine-1")
        assert (await get(**{"If-None-Match": '"another"'}))[0] == 200
        status, headers, body = await get(**{"If-None-Match": etag})
        assert (status, headers["ETag"], body) == (304, etag, b"")
    after = await scrape(system)
    assert asked(after) - asked(before) >= 20
    assert (await get(**{"X-Correlation-ID": "x" * 1001}))[0] == 400  # too long: the service refuses it

    # Anonymous reads only: a signed-in reader is answered by the service, in their own zone as
    # their profile has it now, and a token that is no token is refused.
    email = f"{uuid.uuid4().hex[:8]}@test.example"
    await api.call("POST", "/auth/register", expect=201, json={"email": email, "password": "password-123", "name": "Tz"})
    client = await api.sign_in(email, "password-123")
    before = await scrape(system)
    for zone in ("Asia/Kolkata", "Asia/Tokyo"):
        await client.call("PATCH", "/me", json={"timezone": zone})
        assert (await api.call("GET", "/availability", params=params))["timezone"] == "UTC"
        assert (await client.call("GET", "/availability", params=params))["timezone"] == zone
        assert (await client.call("GET", "/availability", params=params))["timezone"] == zone
    assert asked(await scrape(system)) - asked(before) >= 4
    assert (await api.as_user("not-a-token").request("GET", "/availability", params=params))[0] == 401


async def test_a_change_whose_announcement_is_lost_is_seen_within_the_bound(api, system):
    """Answers are kept between announced changes; a change nobody announced (written straight into
    the counters, as if the announcement were lost) still shows within ANSWER_MAX_AGE_SECONDS."""
    import asyncpg
    from redis.asyncio import Redis

    from booking.adapters.repository import duty_lock
    from common.counters import EventKeys

    admin = await sign_in_admin(api, system)
    day = date.today() + timedelta(days=6)
    event = await create_event(admin, timezone="UTC", start_date=day, end_date=day, opens_at="10:00", closes_at="11:00")
    pro, _ = await create_professional(api, admin)
    await add_shift(admin, event, local(day, 10, 0, UTC), local(day, 11, 0, UTC), 3, professional=pro)
    await wait_for_availability(api, event["id"], day, lambda b: b["slots"][0]["remaining"] == 3)
    ten = str(int(local(day, 10, 0, UTC).timestamp()))
    remaining = EventKeys.of(system.settings.redis_key_prefix, uuid.UUID(event["id"])).remaining
    redis = Redis.from_url(system.settings.redis_url, decode_responses=True)
    loop = asyncio.get_running_loop()
    # The owner's reconcile would put the hand-written counter back (it is drift): held off meanwhile,
    # by holding the lock its one-at-a-time duty takes.
    owner = await asyncpg.connect(system.settings.database_for("booking").replace("+asyncpg", ""))
    await owner.execute("BEGIN")
    assert await owner.fetchval("SELECT pg_try_advisory_xact_lock($1)", duty_lock("reconcile"))
    try:
        delays = []
        for shown in (2, 1, 3):
            await api.call("GET", "/availability", params={"event_id": event["id"], "date": day.isoformat()})  # kept again
            await redis.hset(remaining, ten, shown)  # no PUBLISH: nobody is told
            written = loop.time()
            while (await api.call("GET", "/availability", params={"event_id": event["id"], "date": day.isoformat()}))["slots"][0][
                "remaining"
            ] != shown:
                assert loop.time() - written < 1.0, "a change not announced was never seen"
                await asyncio.sleep(0.005)
            delays.append(loop.time() - written)
    finally:
        await redis.aclose()
        await owner.close()
    assert max(delays) <= ANSWER_MAX_AGE + 0.05, delays
    assert max(delays) > 0.02, f"seen at once {delays}: answers are not being kept"
