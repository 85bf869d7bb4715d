"""Professionals' accounts live in the gateway; the shifts service keeps its directory from the
gateway's ``professional.created`` / ``professional.updated`` events, so no account waits on it."""

import asyncio
import signal
import time as clock
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.integration.helpers import add_shift, create_event, create_professional, local, sign_in_admin


async def test_an_account_is_made_while_the_shifts_service_is_stopped_and_reaches_it_later(api, system):
    admin = await sign_in_admin(api, system)
    shifts = next(p for p in system.stack.supervisor.processes if p.name == "shifts")
    shifts.proc.send_signal(signal.SIGSTOP)
    try:
        started = clock.monotonic()
        pro, _ = await create_professional(api, admin, name="Dr. Paused")  # 201, or the helper fails
        took = clock.monotonic() - started
    finally:
        shifts.proc.send_signal(signal.SIGCONT)
    assert took < 2, f"creating a professional waited {took:.1f} s on the shifts service"
    day = datetime.now(ZoneInfo("UTC")).date() + timedelta(days=3)
    event = await create_event(admin, timezone="UTC", start_date=day, end_date=day, opens_at="10:00", closes_at="11:00")
    utc = ZoneInfo("UTC")
    shift = await add_shift(admin, event, local(day, 10, 0, utc), local(day, 11, 0, utc), professional=pro)
    assert shift["professional"] == {"id": pro["id"], "name": "Dr. Paused"}


async def test_a_professionals_new_name_reaches_the_shifts_they_work(api, system):
    admin = await sign_in_admin(api, system)
    pro, as_pro = await create_professional(api, admin, name="Dr. Before")
    day = datetime.now(ZoneInfo("UTC")).date() + timedelta(days=3)
    event = await create_event(admin, timezone="UTC", start_date=day, end_date=day, opens_at="10:00", closes_at="12:00")
    utc = ZoneInfo("UTC")
    shift = await add_shift(as_pro, event, local(day, 10, 0, utc), local(day, 11, 0, utc))
    assert shift["professional"]["name"] == "Dr. Before"
    await as_pro.call("PATCH", "/me", json={"name": "Dr. After"})
    deadline = clock.monotonic() + 10
    while (seen := await admin.call("GET", f"/shifts/{shift['id']}"))["professional"]["name"] != "Dr. After":
        assert clock.monotonic() < deadline, f"the directory still says {seen['professional']['name']!r}"
        await asyncio.sleep(0.05)
    # The professional's old token (it still says "Dr. Before") never overrides the announcement.
    later = await add_shift(as_pro, event, local(day, 11, 0, utc), local(day, 12, 0, utc))
    assert later["professional"]["name"] == "Dr. After"
