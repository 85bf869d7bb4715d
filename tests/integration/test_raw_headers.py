"""Header values that are not UTF-8 (SPEC §6), sent as raw bytes through the public entry: each
is a 400 problem document, never a 500, and nothing is written."""

import asyncio
import json
from datetime import date, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from common.roles import Role
from tests.integration.helpers import add_shift, create_event, create_professional, local, sign_in_admin, wait_for_availability

NOT_UTF8 = b"key-\xff\xfe-\xc3"  # a byte no UTF-8 text has, a stray lead byte


async def _raw(public_url: str, request: bytes) -> tuple[int, dict]:
    """One request as these very bytes; the status and the problem document answered."""
    parts = urlsplit(public_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(request)
        await writer.drain()
        head, _, rest = (await asyncio.wait_for(reader.read(65536), 10)).partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        return status, json.loads(rest) if rest.strip().startswith(b"{") else {}
    finally:
        writer.close()


def _request(method: str, path: str, headers: dict[str, bytes], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: localhost", b"Connection: close"]
    lines += [name.encode() + b": " + value for name, value in headers.items()]
    if body:
        lines += [b"Content-Type: application/json", f"Content-Length: {len(body)}".encode()]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def test_header_values_that_are_not_utf8_are_400_problems(api, system):
    admin = await sign_in_admin(api, system)
    day, utc = date.today() + timedelta(days=3), ZoneInfo("UTC")
    event = await create_event(admin, timezone="UTC", start_date=day, end_date=day, opens_at="10:00", closes_at="11:00")
    pro, _ = await create_professional(api, admin)
    await add_shift(admin, event, local(day, 10, 0, utc), local(day, 11, 0, utc), 1, professional=pro)
    await wait_for_availability(api, event["id"], day, lambda answer: answer["reason"] is None)
    token = system.token_for(Role.CLIENT).encode()
    booking = json.dumps({"event_id": event["id"], "start": local(day, 10, 0, utc).isoformat()})
    cases = {
        "Idempotency-Key of a booking": _request(
            "POST", "/api/v1/bookings", {"Authorization": b"Bearer " + token, "Idempotency-Key": NOT_UTF8}, booking.encode()
        ),
        "If-None-Match of availability": _request(
            "GET", "/api/v1/availability?event_id=00000000-0000-4000-8000-000000000000&date=2030-01-01",
            {"If-None-Match": b'"' + NOT_UTF8 + b'"'},
        ),
        "Authorization": _request("GET", "/api/v1/bookings", {"Authorization": b"Bearer " + NOT_UTF8}),
        "Authorization at the gateway": _request("GET", "/api/v1/me", {"Authorization": b"Bearer " + NOT_UTF8}),
        "X-Correlation-ID": _request("GET", "/api/v1/events", {"X-Correlation-ID": NOT_UTF8}),
    }  # fmt: skip
    for case, request in cases.items():
        status, problem = await _raw(system.public_url, request)
        assert status == 400 and problem.get("code", "").startswith("invalid_"), (case, status, problem)
    client = api.as_user(token.decode())
    assert (await client.call("GET", "/bookings"))["items"] == []  # nothing was booked on the way
