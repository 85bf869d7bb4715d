"""Availability: a day of 48 slots with 50 professionals, queried by many concurrent clients (our
load generator closed and open loop, and wrk as a cross-check); and the time from a committed shift
change to the change being visible. Run with ``make bench``."""

import asyncio
import re
import shutil
import time
from datetime import datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from tests.benchmarks.loadgen import KindReport, Plan, http_request, percentile, run
from tests.benchmarks.results import Results
from tests.integration.helpers import add_shift, create_event, create_professional, local, sign_in_admin, wait_for_availability

pytestmark = pytest.mark.bench

ZONE = ZoneInfo("Europe/Berlin")
PROFESSIONALS = 50
SECONDS = 5
OPEN_LOOP_RATE = 8000  # requests/s: issue 13's target through the public entry
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
    open_loop = Plan(
        system.public_url, [("availability", http_request("GET", through_entry))], 100, SECONDS, repeat=True, rate=OPEN_LOOP_RATE
    )
    runs[f"through the public entry, open loop at {OPEN_LOOP_RATE:,}/s", 100] = (await run(open_loop)).kinds["availability"]
    if shutil.which("wrk"):
        runs["through the public entry, wrk (cross-check)", 100] = await wrk(through_entry, 100, SECONDS)
    async with aiohttp.ClientSession() as http:
        # Propagation: change a shift in the shifts service (it answers after the commit), then
        # watch the availability service, or the public entry (which may keep an answer for its
        # part of the bound), until the slot shows the change.
        nine = local(day, 9, 0, ZONE).isoformat()
        delays: dict[str, list[float]] = {"availability service": [], "public entry": []}
        for i in range(PROPAGATION_SAMPLES * 2):
            capacity = 2 if i % 2 == 0 else 1
            watched, url = ("availability service", direct) if i < PROPAGATION_SAMPLES else ("public entry", through_entry)
            await admin.call("PATCH", f"/shifts/{shifts[0]['id']}", json={"capacity": capacity})
            committed = time.perf_counter()
            while True:
                async with http.get(url) as response:
                    body = await response.json()
                if next(s for s in body["slots"] if s["start"] == nine)["remaining"] == PROFESSIONALS + capacity - 1:
                    break
                await asyncio.sleep(0.001)
            delays[watched].append(time.perf_counter() - committed)

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
            p95=f"{k.p95_ms:.1f} ms" + (" (p90: wrk)" if "wrk" in name else ""),
            p99=f"{k.p99_ms:.1f} ms",
            target="≥ 8,000/s, p99 ≤ 25 ms" if connections == 100 and "entry" in name else "",
        )
        if connections != 100:
            continue
        results.bar(
            "Availability reads at 100 connections: throughput",
            "requests/s",
            name.replace(" (", "\n(").replace(", ", ",\n"),
            "requests/s",
            k.rate,
        )
        results.bar(
            "Availability reads at 100 connections: p99", "ms", name.replace(" (", "\n(").replace(", ", ",\n"), "p99", k.p99_ms
        )
    for watched, seen in delays.items():
        p50, p99 = percentile(seen, 50) * 1000, percentile(seen, 99) * 1000
        print(f"shift change committed -> visible at the {watched}: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({len(seen)} changes)")
        results.row(
            "Other figures",
            what=f"shift change committed in the shifts service → visible at the {watched}",
            value=f"p50 {p50:.1f} ms, p99 {p99:.1f} ms ({len(seen)} changes)",
            target="p99 ≤ 100 ms",
        )
    print(f"Redis memory: {memory:,.0f} bytes per slot ({PROFESSIONALS} professionals with a shift in each)")
    results.row(
        "Other figures",
        what=f"Redis memory per slot ({PROFESSIONALS} professionals with a shift in it)",
        value=f"{memory:,.0f} bytes",
        target="",
    )
    assert all(set(k.statuses) == {"200"} for k in runs.values())


async def wrk(url: str, connections: int, seconds: int) -> KindReport:
    """wrk (Debian's package) against ``url``: an independent figure for the same reads."""
    process = await asyncio.create_subprocess_exec(
        "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url, stdout=asyncio.subprocess.PIPE
    )
    output = (await process.communicate())[0].decode()

    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)$", output, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    count = int(re.search(r"(\d+) requests in", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    statuses = {"200": count - int(errors.group(1)) if errors else count} | ({"non-2xx": int(errors.group(1))} if errors else {})
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    return KindReport(count, statuses, ms("50%"), ms("90%"), ms("99%"), rate)  # wrk prints p90, not p95


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
