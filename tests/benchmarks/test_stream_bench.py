"""Live slots: 2,000 open day streams (``GET /availability/stream``, server-sent events) through the
public entry, all watching the same day, and how long a booking's change takes to reach every one
of them. Run with ``make bench``."""

import asyncio
import contextlib
import time
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import psutil
import pytest

from common.roles import Role
from tests.benchmarks.loadgen import percentile
from tests.benchmarks.results import Results
from tests.integration.helpers import add_shift, create_event, create_professional, local, sign_in_admin, wait_for_availability

pytestmark = pytest.mark.bench

ZONE = ZoneInfo("Europe/Lisbon")
STREAMS = 2000
CHANGES = 20
TARGET_P99_MS = 250


class Arrivals:
    """Answers arrived on all streams together: ``every_stream`` is set once each stream has had
    one more since ``expect``."""

    def __init__(self, streams: int) -> None:
        self._streams, self._left = streams, 0
        self.every_stream = asyncio.Event()

    def expect(self) -> None:
        self._left = self._streams
        self.every_stream.clear()

    def one_more(self) -> None:
        self._left -= 1
        if self._left == 0:
            self.every_stream.set()


class Stream:
    """One client's stream, read with plain asyncio (2,000 of them cost the load generator little):
    when each answer (its id) arrived."""

    def __init__(self, all_streams: "Arrivals") -> None:
        self.arrived: dict[str, float] = {}
        self.first = asyncio.Event()
        self.writer: asyncio.StreamWriter | None = None
        self._all = all_streams

    async def follow(self, url: str) -> None:
        parts = urlsplit(url)
        reader, self.writer = await asyncio.open_connection(parts.hostname, parts.port)
        self.writer.write(f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.hostname}\r\n\r\n".encode())
        await self.writer.drain()
        async for line in reader:
            if line.startswith(b"id: "):
                self.arrived[line[4:].strip().decode()] = time.perf_counter()
                self.first.set()
                self._all.one_more()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def test_2000_streams_see_a_booking_within_250_ms(api, system, results: Results):
    admin = await sign_in_admin(api, system)
    day = datetime.now(ZONE).date() + timedelta(days=5)
    event = await create_event(admin, timezone=ZONE.key, start_date=day, end_date=day, opens_at="09:00", closes_at="17:00")
    pro, _ = await create_professional(api, admin)
    await add_shift(admin, event, local(day, 9, 0, ZONE), local(day, 17, 0, ZONE), CHANGES, professional=pro)
    await wait_for_availability(api, event["id"], day, lambda a: a["slots"][0]["remaining"] == CHANGES)
    url = f"{system.public_url}/api/v1/availability/stream?{urlencode({'event_id': event['id'], 'date': day.isoformat()})}"
    (availability,) = system.stack.supervisor.of("availability")
    service = psutil.Process(availability.proc.pid)
    memory_before = service.memory_info().rss

    arrivals = Arrivals(STREAMS)
    streams = [Stream(arrivals) for _ in range(STREAMS)]
    readers = []
    opened = time.perf_counter()
    for batch in range(0, STREAMS, 200):  # as clients arrive, not all in one instant
        readers += [asyncio.create_task(s.follow(url)) for s in streams[batch : batch + 200]]
        await asyncio.gather(*(s.first.wait() for s in streams[batch : batch + 200]))
    open_seconds = time.perf_counter() - opened
    memory_per_stream = (service.memory_info().rss - memory_before) / STREAMS
    cpu_before = service.cpu_times()

    client = api.as_user(system.token_for(Role.CLIENT))
    delays: list[float] = []
    missed = 0
    for _ in range(CHANGES):
        seen = {id(s): set(s.arrived) for s in streams}
        arrivals.expect()
        start = local(day, 9, 0, ZONE).isoformat()
        await client.call("POST", "/bookings", expect=201, json={"event_id": event["id"], "start": start})
        booked = time.perf_counter()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrivals.every_stream.wait(), 5)  # a stream that never has it counts as missed
        for s in streams:
            new = [at for answer, at in s.arrived.items() if answer not in seen[id(s)]]
            if new:
                delays.append(min(new) - booked)
            else:
                missed += 1
        await asyncio.sleep(0.2)  # the next change after the stream's minimum interval
    cpu = service.cpu_times()
    cpu_ms_per_change = ((cpu.user + cpu.system) - (cpu_before.user + cpu_before.system)) * 1000 / CHANGES

    for s in streams:
        s.close()
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)

    p50, p99, worst = (percentile(delays, q) * 1000 for q in (50, 99, 100))
    table = f"Live slots: {STREAMS:,} open streams of one day through the public entry, {CHANGES} bookings"
    print(f"\n--- {table}")
    print(f"opened in {open_seconds:.1f} s; availability's memory per open stream: {memory_per_stream / 1024:.1f} KiB")
    print(f"booking answered -> new answer on each stream: p50 {p50:.0f} ms, p99 {p99:.0f} ms, worst {worst:.0f} ms")
    print(f"updates missed: {missed} of {STREAMS * CHANGES:,}; availability CPU per change: {cpu_ms_per_change:.0f} ms")
    results.row(
        table,
        what="booking answered → the new answer on every stream",
        value=f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, worst {worst:.0f} ms; {missed} of {STREAMS * CHANGES:,} missed",
        target=f"p99 ≤ {TARGET_P99_MS} ms, none missed",
    )
    results.row(
        table,
        what="cost in the availability process",
        value=f"{memory_per_stream / 1024:.1f} KiB per open stream; {cpu_ms_per_change:.0f} ms CPU per change sent to all",
        target="",
    )
    assert missed == 0
