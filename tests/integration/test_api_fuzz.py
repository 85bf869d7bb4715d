"""schemathesis against the served OpenAPI document, signed in as each role: no 5xx, and every
answer conforms to the document."""

import asyncio
import os
import re
import sys

import pytest

from common.roles import Role


@pytest.mark.parametrize("role", [Role.CLIENT, Role.PROFESSIONAL, Role.ADMIN])
async def test_no_server_errors_and_every_answer_conforms_for_each_role(system, role):
    token = system.token_for(role, name=f"Fuzzed {role.value}", email=f"fuzz-{role.value}@test.example")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{system.public_url}/api/v1/openapi.json",
        "--url",
        system.public_url,
        "-H",
        f"Authorization: Bearer {token}",
        "--checks",
        "not_a_server_error,response_schema_conformance",
        "--max-examples",
        "15",
        "--workers",
        "1",
        "--seed",
        "20261125",
        "--no-color",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=os.environ | {"NO_COLOR": "1"},
    )
    output = (await asyncio.wait_for(process.communicate(), 300))[0].decode(errors="replace")
    assert process.returncode == 0, output[-4000:]
    assert re.search(r"(\d+) generated, \1 passed", output), output[-2000:]  # cases really ran, and all passed
