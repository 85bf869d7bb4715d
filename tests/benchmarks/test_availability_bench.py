"""Availability: a day of 48 slots with 50 professionals, queried by many concurrent clients; and the
time from a committed shift change to the change being visible. Run with ``make bench``."""

import asyncio
import time
from datetime import datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from tests.benchmarks.loadgen import closed_loop, have_wrk, percentile, wrk
from tests.integration.helpers import create_event, create_professional, local, sign_in_admin, wait_for_availability

pytestmark = pytest.mark.bench

ZONE = ZoneInfo("Europe/Berlin")
PROFESSIONALS = 50
SECONDS = 10
PROPAGATION_SAMPLES = 100


async def test_availability_latency_throughput_and_propagation(api, system):
    admin = await sign_in_admin(api, system)
    day = datetime.now(ZONE).date() + timedelta(days=7)
    event = await create_event(
        admin, timezone=ZONE.key, start_date=day, end_date=day, opens_at="08:00", closes_at="20:00", slot_minutes=15
    )
    shifts = []
    for i in range(PROFESSIONALS):
        _, as_pro = await create_professional(api, admin, name=f"Dr. Bench {i}")
        shifts.append(
            await as_pro.call(
                "POST",
                "/shifts",
                expect=201,
                json={
                    "event_id": event["id"],
                    "start": local(day, 8, 0, ZONE).isoformat(),
                    "end": local(day, 20, 0, ZONE).isoformat(),
                },
            )
        )
    ready = await wait_for_availability(api, event["id"], day, lambda b: all(s["remaining"] == PROFESSIONALS for s in b["slots"]))
    assert len(ready["slots"]) == 48

    query = urlencode({"event_id": event["id"], "date": day.isoformat()})
    direct = f"{system.settings.url_of('availability')}/availability?{query}"
    through_gateway = f"{system.gateway_url}/api/v1/availability?{query}"
    results = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as http:

        async def get(url: str) -> int:
            async with http.get(url) as response:
                await response.read()
                return response.status

        for name, url in (("availability service", direct), ("through the gateway", through_gateway)):
            for concurrency in (100, 8):
                if have_wrk():
                    results[name, concurrency] = await wrk(url, concurrency, SECONDS)
                else:
                    results[name, concurrency] = await closed_loop(lambda url=url: get(url), concurrency, SECONDS)

        # Propagation: change a shift in the shifts service (it answers after the commit), then
        # watch the availability service until the slot shows the change.
        nine = local(day, 9, 0, ZONE).isoformat()
        delays = []
        for i in range(PROPAGATION_SAMPLES):
            capacity = 2 if i % 2 == 0 else 1
            await admin.call("PATCH", f"/shifts/{shifts[0]['id']}", json={"capacity": capacity})
            committed = time.perf_counter()
            while True:
                async with http.get(direct) as response:
                    body = await response.json()
                if next(s for s in body["slots"] if s["start"] == nine)["remaining"] == PROFESSIONALS + capacity - 1:
                    break
                await asyncio.sleep(0.001)
            delays.append(time.perf_counter() - committed)

    print(f"\n--- availability: 48 slots x {PROFESSIONALS} professionals, {SECONDS}s per run")
    for (name, concurrency), result in results.items():
        print(result.summary(f"{name}, {concurrency:>3} concurrent"))
    print(
        f"shift change committed -> visible: p50 {percentile(delays, 50) * 1000:.1f} ms, "
        f"p99 {percentile(delays, 99) * 1000:.1f} ms ({PROPAGATION_SAMPLES} changes)"
    )
    assert all(set(r.statuses) == {200} or set(r.statuses) == {"2xx"} for r in results.values())
