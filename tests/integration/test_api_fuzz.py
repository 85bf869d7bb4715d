"""schemathesis against the served OpenAPI document, anonymously and signed in as each role, with
ids that resolve (a seeded event, blackout, shift and booking, so ``event_id``, ``shift_id`` and
``booking_id`` reach real rows and the cases behind them): no 5xx, and every answer conforms to
the document."""

import asyncio
import os
import re
import sys
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from common.roles import Role
from tests.integration.helpers import add_shift, create_event, create_professional, local, sign_in_admin, wait_for_availability

UTC = ZoneInfo("UTC")
EXAMPLES = 25  # per operation; with the coverage phase's own cases, enough to reach the odd inputs of issue 14


@pytest.fixture
async def seeded(api, system) -> tuple[dict[str, str], dict[Role | None, str]]:
    """Real ids for the path and query parameters, and a token per role whose owner holds them."""
    admin = await sign_in_admin(api, system)
    day = date.today() + timedelta(days=8)
    event = await create_event(admin, timezone="UTC", start_date=day, end_date=day, opens_at="09:00", closes_at="17:00")
    blackout = await admin.call(
        "POST", f"/events/{event['id']}/blackouts", expect=201, json={"start_time": "12:00", "end_time": "13:00"}
    )
    pro, as_pro = await create_professional(api, admin, name="Dr. Fuzz")
    shift = await add_shift(as_pro, event, local(day, 9, 0, UTC), local(day, 12, 0, UTC), 5)
    await wait_for_availability(api, event["id"], day, lambda b: b["reason"] is None)
    client = system.token_for(Role.CLIENT, name="Fuzzed client", email="fuzz-client@test.example")
    body = {"event_id": event["id"], "start": local(day, 9, 0, UTC).isoformat()}
    booking = await api.as_user(client).call("POST", "/bookings", expect=201, json=body)
    ids = {"event_id": event["id"], "blackout_id": blackout["id"], "shift_id": shift["id"], "booking_id": booking["id"]}
    # An admin of the token's own, not the seeded admin's account: a fuzzed PATCH /me that takes (a
    # zone name from the document's examples) must not change the account other tests sign in as.
    tokens = {Role.CLIENT: client, Role.PROFESSIONAL: as_pro.token, Role.ADMIN: system.token_for(Role.ADMIN), None: ""}
    return ids, tokens


@pytest.mark.parametrize(
    "role", [None, Role.CLIENT, Role.PROFESSIONAL, Role.ADMIN], ids=["anonymous", "client", "professional", "admin"]
)
async def test_no_server_errors_and_every_answer_conforms(api, system, seeded, role, tmp_path):
    ids, tokens = seeded
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        "[parameters]\n"
        + "".join(f'"path.{name}" = "{value}"\n' for name, value in ids.items())
        + f'"query.event_id" = "{ids["event_id"]}"\n'
    )
    signed_in = ["-H", f"Authorization: Bearer {tokens[role]}"] if role else []
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{system.public_url}/api/v1/openapi.json",
        "--url",
        system.public_url,
        *signed_in,
        "--checks",
        "not_a_server_error,response_schema_conformance",
        # A day's stream never ends, so each case would wait out the client's timeout and schemathesis
        # take the server for gone; its refusals and events are tested in test_availability_stream.
        "--exclude-operation-id",
        "streamAvailability",
        "--max-examples",
        str(EXAMPLES),
        "--workers",
        "1",
        "--seed",
        "20261202",
        "--no-color",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=os.environ | {"NO_COLOR": "1"},
    )
    output = (await asyncio.wait_for(process.communicate(), 400))[0].decode(errors="replace")
    assert process.returncode == 0, output[-4000:]
    assert re.search(r"(\d+) generated, \1 passed", output), output[-2000:]  # cases really ran, and all passed
    if role is Role.CLIENT:  # the ids reached real rows: the client's fuzzed cancel found its booking
        booking = await api.as_user(tokens[Role.CLIENT]).call("GET", f"/bookings/{ids['booking_id']}")
        assert booking["status"] == "cancelled"
