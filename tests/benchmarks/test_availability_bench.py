"""Availability: a day of 48 slots with 50 professionals, queried by many concurrent clients; and the
time from a committed shift change to the change being visible. Run with ``make bench``."""

import asyncio
import time
from datetime import datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from tests.benchmarks.loadgen import Plan, http_request, percentile, run
from tests.benchmarks.results import Results
from tests.integration.helpers import add_shift, create_event, create_professional, local, sign_in_admin, wait_for_availability

pytestmark = pytest.mark.bench

ZONE = ZoneInfo("Europe/Berlin")
PROFESSIONALS = 50
SECONDS = 5
PROPAGATION_SAMPLES = 100


async def test_availability_latency_throughput_and_propagation(api, system, results: Results):
    admin = await sign_in_admin(api, system)
    day = datetime.now(ZONE).date() + timedelta(days=7)
    event = await create_event(
        admin, timezone=ZONE.key, start_date=day, end_date=day, opens_at="08:00", closes_at="20:00", slot_minutes=15
    )
    shifts = []
    for i in range(PROFESSIONALS):
        _, as_pro = await create_professional(api, admin, name=f"Dr. Bench {i}")
        shifts.append(await add_shift(as_pro, event, local(day, 8, 0, ZONE), local(day, 20, 0, ZONE)))
    ready = await wait_for_availability(api, event["id"], day, lambda b: all(s["remaining"] == PROFESSIONALS for s in b["slots"]))
    assert len(ready["slots"]) == 48

    query = urlencode({"event_id": event["id"], "date": day.isoformat()})
    direct = f"{system.settings.url_of('availability')}/availability?{query}"
    through_entry = f"{system.public_url}/api/v1/availability?{query}"
    runs = {}
    for name, base, url in (
        ("availability service", system.settings.url_of("availability"), direct),
        ("through the public entry (nginx)", system.public_url, through_entry),
    ):
        for connections in (100, 8):
            plan = Plan(base, [("availability", http_request("GET", url))], connections, seconds=SECONDS, repeat=True)
            runs[name, connections] = (await run(plan)).kinds["availability"]
    async with aiohttp.ClientSession() as http:
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

    memory = await redis_bytes_per_slot(system, event["id"], len(ready["slots"]))
    table = f"Availability: one day of 48 slots x {PROFESSIONALS} professionals, GET /availability for {SECONDS} s"
    print(f"\n--- {table}")
    for (name, connections), k in runs.items():
        print(f"{name}, {connections:>3} connections: {k.rate:,.0f}/s, p50 {k.p50_ms:.1f} ms, p99 {k.p99_ms:.1f} ms {k.statuses}")
        results.row(
            table,
            path=name,
            connections=connections,
            requests_per_s=f"{k.rate:,.0f}",
            p50=f"{k.p50_ms:.1f} ms",
            p95=f"{k.p95_ms:.1f} ms",
            p99=f"{k.p99_ms:.1f} ms",
            target="p99 ≤ 10 ms at 100" if connections == 100 else "",
        )
    p50, p99 = percentile(delays, 50) * 1000, percentile(delays, 99) * 1000
    print(f"shift change committed -> visible: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({PROPAGATION_SAMPLES} changes)")
    print(f"Redis memory: {memory:,.0f} bytes per slot ({PROFESSIONALS} professionals with a shift in each)")
    results.row(
        "Other figures",
        what="shift change committed in the shifts service → visible in availability",
        value=f"p50 {p50:.1f} ms, p99 {p99:.1f} ms ({PROPAGATION_SAMPLES} changes)",
        target="p99 ≤ 100 ms",
    )
    results.row(
        "Other figures",
        what=f"Redis memory per slot ({PROFESSIONALS} professionals with a shift in it)",
        value=f"{memory:,.0f} bytes",
        target="",
    )
    assert all(set(k.statuses) == {"200"} for k in runs.values())


async def redis_bytes_per_slot(system, event_id: str, slots: int) -> float:
    """MEMORY USAGE of every key the event's counters live in, over its slots."""
    from redis.asyncio import Redis

    redis = Redis.from_url(system.settings.redis_url)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{system.settings.redis_key_prefix}:{{evt:{event_id}}}:*", count=1000)]
        total = sum([await redis.memory_usage(k, samples=0) or 0 for k in keys])
    finally:
        await redis.aclose()
    return total / slots
