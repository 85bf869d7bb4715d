"""A day's stream (``GET /availability/stream``, server-sent events) through the public entry: the
day now, then again when a slot of it changes; a reconnect with the last id resumes; errors are
answered before a stream starts; a client that goes away leaves nothing open."""

import asyncio
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from common.roles import Role
from tests.integration.helpers import (
    add_shift,
    create_event,
    create_professional,
    local,
    server_sent_events,
    sign_in_admin,
    statuses,
    wait_for_availability,
)
from tests.integration.test_observability import scrape, total

UTC = ZoneInfo("UTC")


async def _next_answer(events, timeout: float = 5.0) -> dict:
    """The next ``availability`` event, skipping the comments that say the stream is alive."""
    async with asyncio.timeout(timeout):
        async for event in events:
            if "data" in event:
                assert event["event"] == "availability" and event["id"].startswith('"'), event
                return event
    raise AssertionError("the stream ended")


async def test_a_stream_sends_the_day_and_again_when_a_slot_of_it_changes(api, system):
    admin = await sign_in_admin(api, system)
    day = date.today() + timedelta(days=6)
    next_day = day + timedelta(days=1)
    event = await create_event(admin, timezone="UTC", start_date=day, end_date=next_day, opens_at="10:00", closes_at="11:00")
    pro, _ = await create_professional(api, admin)
    await add_shift(admin, event, local(day, 10, 0, UTC), local(day, 11, 0, UTC), 1, professional=pro)
    await add_shift(admin, event, local(next_day, 10, 0, UTC), local(next_day, 11, 0, UTC), 2, professional=pro)
    await wait_for_availability(api, event["id"], next_day, lambda a: a["reason"] is None)
    url, query = f"{api.base_url}/availability/stream", {"event_id": event["id"], "date": day.isoformat()}

    async with api.http.get(url, params=query) as response:
        assert response.status == 200 and response.headers["Content-Type"] == "text/event-stream"
        events = server_sent_events(response)
        first = await _next_answer(events)
        assert statuses(first["data"]) == {"10:00": ("available", 1), "10:30": ("available", 1)}
        client = api.as_user(system.token_for(Role.CLIENT))
        # Another day of the same event changes: nothing is sent on this day's stream ...
        other = local(next_day, 10, 0, UTC).isoformat()
        await client.call("POST", "/bookings", expect=201, json={"event_id": event["id"], "start": other})
        # ... and this day's slot taken is: it turns full without anyone asking.
        started = asyncio.get_running_loop().time()
        booked = await client.call(
            "POST", "/bookings", expect=201, json={"event_id": event["id"], "start": local(day, 10, 0, UTC).isoformat()}
        )
        changed = await _next_answer(events, timeout=0.5)  # announced: not left to the 1 s re-check
        print(f"the change reached the stream {asyncio.get_running_loop().time() - started:.3f} s after the booking answered")
        assert statuses(changed["data"])["10:00"] == ("full", 0) and changed["id"] != first["id"]
        last_id = changed["id"]

    # Reconnecting with the last id: nothing is sent again until the day changes.
    async with api.http.get(url, params=query, headers={"Last-Event-ID": last_id}) as response:
        events = server_sent_events(response)
        opening = await anext(events)
        assert opening == {"comment": "alive"}, opening
        await client.call("POST", f"/bookings/{booked['id']}/cancel")
        again = await _next_answer(events, timeout=0.5)
        assert statuses(again["data"])["10:00"] == ("available", 1)

    # An id the day no longer has (or none): the day as it is now, at once.
    async with api.http.get(url, params=query, headers={"Last-Event-ID": last_id}) as response:
        assert (await _next_answer(server_sent_events(response)))["id"] == again["id"]


async def test_a_stream_refuses_what_a_day_refuses_before_it_starts(api, system):
    unknown = "00000000-0000-4000-8000-000000000000"
    status, problem = await api.request("GET", "/availability/stream", params={"event_id": unknown, "date": "2030-01-01"})
    assert (status, problem.get("code")) == (404, "not_found")
    status, problem = await api.request("GET", "/availability/stream", params={"event_id": unknown, "date": "2030-02-30"})
    assert (status, problem.get("code")) == (422, "validation_failed")


async def test_clients_that_go_away_leave_no_stream_open(api, system):
    admin = await sign_in_admin(api, system)
    day = date.today() + timedelta(days=6)
    event = await create_event(admin, timezone="UTC", start_date=day, end_date=day)
    await wait_for_availability(api, event["id"], day, lambda a: True)

    async def open_streams() -> float:
        return total(await scrape(system), "availability", "availability_streams_open")

    async def until_open_streams_are(count: int) -> None:
        deadline = asyncio.get_running_loop().time() + 5  # a client gone is noticed within a second
        while (now_open := await open_streams()) != count:
            assert asyncio.get_running_loop().time() < deadline, f"{now_open} streams open, not {count}"
            await asyncio.sleep(0.1)

    await until_open_streams_are(0)  # what earlier tests opened is closed (no test runs beside this one)
    url, query = f"{api.base_url}/availability/stream", {"event_id": event["id"], "date": day.isoformat()}
    responses = [await api.http.get(url, params=query) for _ in range(20)]
    for response in responses:
        await _next_answer(server_sent_events(response))
    assert await open_streams() == 20
    for response in responses:
        response.close()  # the connection dropped, as a closed tab drops it
    await until_open_streams_are(0)
