"""GET /api/v1/openapi.json: every public route, and schemas the real answers conform to."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import jsonschema

from common.roles import Role
from tests.integration.helpers import add_shift, create_event, create_professional, local, sign_in_admin, wait_for_availability

SPEC_ROUTES = {
    ("post", "/auth/register"),
    ("post", "/auth/login"),
    ("get", "/me"),
    ("patch", "/me"),
    ("post", "/events"),
    ("get", "/events"),
    ("get", "/events/{event_id}"),
    ("post", "/events/{event_id}/blackouts"),
    ("delete", "/events/{event_id}/blackouts/{blackout_id}"),
    ("post", "/professionals"),
    ("get", "/professionals"),
    ("post", "/shifts"),
    ("get", "/shifts"),
    ("patch", "/shifts/{shift_id}"),
    ("delete", "/shifts/{shift_id}"),
    ("get", "/availability"),
    ("post", "/bookings"),
    ("get", "/bookings"),
    ("get", "/bookings/{booking_id}"),
    ("post", "/bookings/{booking_id}/cancel"),
    ("get", "/openapi.json"),
}


def conforms(document: dict, path: str, method: str, status: int, body) -> None:
    response = document["paths"][path][method]["responses"][str(status)]
    content_type = next(iter(response["content"]))
    schema = {"components": document["components"], **response["content"][content_type]["schema"]}
    jsonschema.Draft202012Validator(schema).validate(body)


async def test_the_document_lists_every_public_route_and_real_answers_conform(api, system):
    document = await api.call("GET", "/openapi.json")
    assert document["openapi"] == "3.1.0"
    listed = {(method, path.removeprefix("/api/v1")) for path, item in document["paths"].items() for method in item}
    assert SPEC_ROUTES <= listed, SPEC_ROUTES - listed
    assert not any(path.endswith(("/readyz", "/healthz")) for path in document["paths"])  # a service's own, not public

    admin = await sign_in_admin(api, system)
    zone = ZoneInfo("Europe/Oslo")
    day = datetime.now(zone).date() + timedelta(days=8)
    event = await create_event(admin, timezone=zone.key, start_date=day, end_date=day, opens_at="10:00", closes_at="11:00")
    conforms(document, "/api/v1/events/{event_id}", "get", 200, await api.call("GET", f"/events/{event['id']}"))
    pro, _ = await create_professional(api, admin)
    shift = await add_shift(admin, event, local(day, 10, 0, zone), local(day, 11, 0, zone), 1, professional=pro)
    conforms(document, "/api/v1/shifts", "post", 201, shift)
    availability = await wait_for_availability(api, event["id"], day, lambda b: b["reason"] is None)
    conforms(document, "/api/v1/availability", "get", 200, availability)
    me = api.as_user(system.token_for(Role.CLIENT))
    booking = await me.call(
        "POST", "/bookings", expect=201, json={"event_id": event["id"], "start": local(day, 10, 0, zone).isoformat()}
    )
    conforms(document, "/api/v1/bookings", "post", 201, booking)
    conforms(document, "/api/v1/bookings", "get", 200, await me.call("GET", "/bookings"))
    conforms(document, "/api/v1/bookings/{booking_id}", "get", 200, await admin.call("GET", f"/bookings/{booking['id']}"))
    status, problem = await me.request(
        "POST", "/bookings", json={"event_id": event["id"], "start": local(day, 10, 0, zone).isoformat()}
    )
    assert status == 409
    conforms(document, "/api/v1/bookings", "post", 409, problem)
    conforms(document, "/api/v1/professionals", "get", 200, await admin.call("GET", "/professionals"))
    conforms(
        document,
        "/api/v1/auth/login",
        "post",
        200,
        await api.call(
            "POST",
            "/auth/login",
            json={"email": system.settings.admin_email, "password": system.settings.admin_password.get_secret_value()},
        ),
    )


async def test_what_a_post_creates_is_linked_to_the_operations_that_take_its_id(api, system):
    """OpenAPI links, so that a stateful test (schemathesis) follows a created booking, shift, event
    or blackout to the operations on it."""
    document = await api.call("GET", "/openapi.json")
    operation_ids = {op["operationId"] for item in document["paths"].values() for op in item.values()}

    def linked(path: str) -> dict[str, dict]:
        return {
            link["operationId"]: link["parameters"]
            for link in document["paths"][path]["post"]["responses"]["201"]["links"].values()
        }

    assert linked("/api/v1/bookings") == {
        "get_bookings_{booking_id}": {"booking_id": "$response.body#/id"},
        "post_bookings_{booking_id}_cancel": {"booking_id": "$response.body#/id"},
        "post_bookings_{booking_id}_reschedule": {"booking_id": "$response.body#/id"},
    }
    assert linked("/api/v1/waitlist") == {
        "delete_waitlist_{waitlist_id}": {"waitlist_id": "$response.body#/id"},
        "post_waitlist_{waitlist_id}_claim": {"waitlist_id": "$response.body#/id"},
    }
    assert linked("/api/v1/events/{event_id}/blackouts") == {
        "delete_events_{event_id}_blackouts_{blackout_id}": {
            "event_id": "$request.path.event_id",
            "blackout_id": "$response.body#/id",
        }
    }
    assert {"get_shifts_{shift_id}", "patch_shifts_{shift_id}", "delete_shifts_{shift_id}"} == set(linked("/api/v1/shifts"))
    every_link = [
        link
        for item in document["paths"].values()
        for op in item.values()
        for r in op["responses"].values()
        for link in r.get("links", {}).values()
    ]
    assert every_link and {link["operationId"] for link in every_link} <= operation_ids
