"""GET /api/v1/openapi.json: every public route, and schemas the real answers conform to."""

import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4
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
        "getBooking": {"booking_id": "$response.body#/id"},
        "cancelBooking": {"booking_id": "$response.body#/id"},
        "rescheduleBooking": {"booking_id": "$response.body#/id"},
    }
    assert linked("/api/v1/waitlist") == {
        "leaveWaitlist": {"waitlist_id": "$response.body#/id"},
        "claimWaitlistOffer": {"waitlist_id": "$response.body#/id"},
    }
    assert linked("/api/v1/events/{event_id}/blackouts") == {
        "deleteBlackout": {
            "event_id": "$request.path.event_id",
            "blackout_id": "$response.body#/id",
        }
    }
    assert {"getShift", "changeShift", "cancelShift"} == set(linked("/api/v1/shifts"))
    every_link = [
        link
        for item in document["paths"].values()
        for op in item.values()
        for r in op["responses"].values()
        for link in r.get("links", {}).values()
    ]
    assert every_link and {link["operationId"] for link in every_link} <= operation_ids


ROOT = Path(__file__).resolve().parents[2]
REDOCLY = ROOT / "tools" / "web-checks" / "node_modules" / ".bin" / "redocly"  # make web-checks
CLIENT_GENERATOR = Path(sys.executable).parent / "openapi-python-client"


async def test_redocly_finds_no_error_and_a_client_generated_from_the_document_type_checks_and_works(api, system, tmp_path):
    document = await api.call("GET", "/openapi.json")
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(document))

    # Redocly's recommended rules: no error (its one warning asks for a licence, which is not ours to pick here).
    env = os.environ | {"REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"}
    lint = await _run(str(REDOCLY), "lint", str(spec), "--format=json", env=env)
    report = json.loads(lint)
    errors = [(p["ruleId"], p["message"], p["location"][0]["pointer"]) for p in report["problems"] if p["severity"] == "error"]
    assert report["totals"]["errors"] == 0 and not errors, errors

    # A Python client generated from it imports and passes mypy --strict (no formatting hooks: the
    # generator's ruff step rewrites its own typing into something mypy refuses).
    (tmp_path / "generator.yaml").write_text("post_hooks: []\nproject_name_override: appointments_client\n")
    await _run(
        str(CLIENT_GENERATOR), "generate", "--path", str(spec), "--meta", "none",
        "--output-path", str(tmp_path / "appointments_client"), "--config", str(tmp_path / "generator.yaml"),
    )  # fmt: skip
    await _run(
        sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / ".mypy"), "appointments_client", cwd=tmp_path
    )

    # ... and works against the running system: typed answers, dates as dates, problems as problems.
    sys.path.insert(0, str(tmp_path))
    try:
        from appointments_client import AuthenticatedClient, Client  # noqa: PLC0415 (generated by this test)
        from appointments_client.api.accounts import get_me, login
        from appointments_client.api.availability import get_availability
        from appointments_client.models import AvailabilityOut, LoginIn, ProblemDocument, SlotStatus, TokenOut, UserOut
    finally:
        sys.path.remove(str(tmp_path))
    anonymous = Client(base_url=system.public_url)
    credentials = LoginIn(email=system.settings.admin_email, password=system.settings.admin_password.get_secret_value())
    token = await login.asyncio(client=anonymous, body=credentials)
    assert isinstance(token, TokenOut)
    admin = AuthenticatedClient(base_url=system.public_url, token=token.access_token)
    me = await get_me.asyncio(client=admin)
    assert isinstance(me, UserOut) and me.email == system.settings.admin_email
    admin_api = await sign_in_admin(api, system)
    zone = ZoneInfo("Asia/Kolkata")
    day = datetime.now(zone).date() + timedelta(days=9)
    event = await create_event(admin_api, timezone=zone.key, start_date=day, end_date=day, opens_at="10:00", closes_at="11:00")
    await wait_for_availability(api, event["id"], day, lambda b: True)
    answer = await get_availability.asyncio(client=admin, event_id=UUID(event["id"]), date=day)
    assert isinstance(answer, AvailabilityOut) and answer.timezone == "UTC"  # the admin's own zone
    assert answer.slots[0].start == datetime(day.year, day.month, day.day, 4, 30, tzinfo=UTC)
    assert {slot.status for slot in answer.slots} == {SlotStatus.FULL}
    refused = await get_availability.asyncio(client=anonymous, event_id=uuid4(), date=day)
    assert isinstance(refused, ProblemDocument) and refused.code == "not_found"


async def _run(*command: str, env: dict | None = None, cwd: Path | None = None) -> str:
    """What the command printed on its standard output; it must succeed."""
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=cwd
    )
    output, errors = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode == 0, f"{command[:3]}: {output.decode()[-3000:]}{errors.decode()[-2000:]}"
    return output.decode()
