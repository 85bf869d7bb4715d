"""Who may touch whose things (BOLA), for every public route with an id, read from the OpenAPI
document itself: only the owner (and whoever else SPEC names) ever gets a 2xx; everyone else a
401, 403 or 404. A route with an id that has no rule here fails the test."""

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from common.roles import Role
from devstack.client import ApiClient
from tests.integration.helpers import add_shift, create_event, create_professional, local, sign_in_admin, wait_for_availability

UTC = ZoneInfo("UTC")
DAY = date.today() + timedelta(days=6)
# The booking's client, and the professional whose shift it is and who is assigned the booking.
ACTORS = ("anonymous", "other client", "other professional", "the client", "the professional", "admin")
EVERYONE = frozenset(ACTORS)


@dataclass(frozen=True)
class Rule:
    allowed: frozenset[str]  # who gets a 2xx
    body: dict | None = None


# SPEC §4: events are public to read and an admin's to change; a shift is its professional's (and
# an admin's); a booking is its client's, its professional's to see, and an admin's; a
# professional does not cancel. A booking is moved by its client or an admin; a place on a
# waitlist is its client's alone (an offer is claimed by them, or by whoever has the mail's link).
RULES = {
    ("GET", "/events/{event_id}"): Rule(EVERYONE),
    ("PATCH", "/events/{event_id}"): Rule(frozenset({"admin"}), {"name": "Renamed"}),
    ("POST", "/events/{event_id}/blackouts"): Rule(frozenset({"admin"}), {"start_time": "12:00", "end_time": "12:30"}),
    ("DELETE", "/events/{event_id}/blackouts/{blackout_id}"): Rule(frozenset({"admin"})),
    ("GET", "/shifts/{shift_id}"): Rule(frozenset({"the professional", "admin"})),
    ("PATCH", "/shifts/{shift_id}"): Rule(frozenset({"the professional", "admin"}), {"capacity": 2}),
    ("DELETE", "/shifts/{shift_id}"): Rule(frozenset({"the professional", "admin"})),
    ("GET", "/bookings/{booking_id}"): Rule(frozenset({"the client", "the professional", "admin"})),
    ("POST", "/bookings/{booking_id}/cancel"): Rule(frozenset({"the client", "admin"})),
    ("POST", "/bookings/{booking_id}/reschedule"): Rule(
        frozenset({"the client", "admin"}), {"start": local(DAY, 10, 30, UTC).isoformat()}
    ),
    ("DELETE", "/waitlist/{waitlist_id}"): Rule(frozenset({"the client"})),
    ("POST", "/waitlist/{waitlist_id}/claim"): Rule(frozenset({"the client"}), {}),
    # A calendar feed's URL is its key (SPEC: its holder reads it, signed in or not); a URL nobody
    # was given opens nothing (test_calendar_feed).
    ("GET", "/calendar/{token}.ics"): Rule(EVERYONE),
}


async def test_every_route_with_an_id_answers_only_those_it_belongs_to(api, system):
    document = await api.call("GET", "/openapi.json")
    paths = {path.removeprefix("/api/v1"): item for path, item in document["paths"].items()}
    with_ids = {(method.upper(), path) for path, item in paths.items() if "{" in path for method in item}
    assert with_ids - RULES.keys() == set(), "a route with an id and no access rule: add one to RULES"
    assert RULES.keys() - with_ids == set(), "a rule for a route that is gone"

    admin = await sign_in_admin(api, system)
    professional, as_professional = await create_professional(api, admin, name="Dr. Owner")
    _, as_other_professional = await create_professional(api, admin, name="Dr. Other")
    callers: dict[str, ApiClient] = {
        "anonymous": api,
        "other client": api.as_user(system.token_for(Role.CLIENT, name="Other Client")),
        "other professional": as_other_professional,
        "the client": api.as_user(system.token_for(Role.CLIENT, name="The Client")),
        "the professional": as_professional,
        "admin": admin,
    }
    day = DAY
    filler = api.as_user(system.token_for(Role.CLIENT, name="Filler"))

    async def fresh() -> dict[str, str]:
        """A new event with a blackout, the professional's shift in it and the client's booking
        (assigned to the professional), and the client's place on the waitlist of 09:30, offered
        a unit: a change never meets one made before it."""
        event = await create_event(admin, timezone="UTC", start_date=day, end_date=day, opens_at="09:00", closes_at="17:00")
        blackout = await admin.call(
            "POST", f"/events/{event['id']}/blackouts", expect=201, json={"start_time": "16:00", "end_time": "16:30"}
        )
        shift = await add_shift(as_professional, event, local(day, 9, 0, UTC), local(day, 11, 0, UTC), 1)
        await wait_for_availability(api, event["id"], day, lambda b: b["reason"] is None)
        start = local(day, 9, 0, UTC).isoformat()
        booking = await callers["the client"].call(
            "POST", "/bookings", expect=201, json={"event_id": event["id"], "start": start}
        )
        assert booking["professional"]["id"] == professional["id"]
        half_past = local(day, 9, 30, UTC).isoformat()
        filled = await filler.call("POST", "/bookings", expect=201, json={"event_id": event["id"], "start": half_past})
        entry = await callers["the client"].call(
            "POST", "/waitlist", expect=201, json={"event_id": event["id"], "start": half_past}
        )
        await filler.call("POST", f"/bookings/{filled['id']}/cancel")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while {e["id"]: e for e in (await callers["the client"].call("GET", "/waitlist"))["items"]}[entry["id"]][
            "status"
        ] != "offered":
            assert loop.time() < deadline, "the freed unit was never offered"
            await asyncio.sleep(0.05)
        ids = {"event_id": event["id"], "blackout_id": blackout["id"], "shift_id": shift["id"], "booking_id": booking["id"]}
        feed = await callers["the client"].call("POST", "/me/calendar-feed", expect=201)
        return ids | {"waitlist_id": entry["id"], "token": feed["url"].rsplit("/", 1)[1].removesuffix(".ics")}

    refused_with = {}
    for (method, path), rule in RULES.items():
        # Everyone not allowed first, on the same things (their attempts must change nothing), then
        # each one allowed, on things of its own (one DELETE would leave nothing for the next).
        ids = await fresh()
        for actor in [a for a in ACTORS if a not in rule.allowed]:
            status, answer = await callers[actor].request(method, path.format(**ids), json=rule.body)
            assert status in (401, 403, 404), (method, path, actor, status, answer)
            refused_with[method, path, actor] = status
        for actor in [a for a in ACTORS if a in rule.allowed]:
            status, answer = await callers[actor].request(method, path.format(**ids), json=rule.body)
            assert 200 <= status < 300, (method, path, actor, status, answer)
            if method != "GET":
                ids = await fresh()
    # Someone else's thing is as good as absent: 404, never a hint that it exists.
    assert refused_with["GET", "/bookings/{booking_id}", "other client"] == 404
    assert refused_with["GET", "/bookings/{booking_id}", "other professional"] == 404
    assert refused_with["GET", "/shifts/{shift_id}", "other professional"] == 404
    assert refused_with["POST", "/bookings/{booking_id}/cancel", "the professional"] == 403  # a role that never may
    assert refused_with["GET", "/bookings/{booking_id}", "anonymous"] == 401
