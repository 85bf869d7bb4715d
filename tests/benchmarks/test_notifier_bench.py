"""Notifier: 1,000 booking.confirmed events into the running system; mails/s, and the time from
publish to the SMTP server accepting the mail. Run with ``make bench``."""

import asyncio
import time

import pytest

from common.envelope import BOOKINGS_EXCHANGE
from common.messaging import Broker
from tests.benchmarks.loadgen import percentile
from tests.integration.test_notifier import booking, event_of

pytestmark = pytest.mark.bench

EVENTS = 1000


async def publish_and_collect(system, broker: Broker, rate: float | None) -> tuple[list[float], float]:
    """Publish EVENTS confirmations (one mail each), paced at ``rate``/s or as fast as possible;
    returns each mail's publish-to-accepted time and the seconds until the last was accepted."""
    already = len(system.mail.messages)
    published: dict[str, float] = {}
    started = time.time()
    for i in range(EVENTS):
        data = booking(client_email=None)  # one mail per event: to the professional
        published[data.professional.email] = time.time()
        await broker.publish(BOOKINGS_EXCHANGE, event_of("booking.confirmed", data))
        if rate:
            await asyncio.sleep(max(0.0, started + (i + 1) / rate - time.time()))
    await asyncio.to_thread(system.mail.wait_for, already + EVENTS, 300)
    arrivals = system.mail.arrivals()[already:]
    delays = [at - published[m["To"]] for at, m in arrivals if m["To"] in published]
    return delays, max(at for at, _ in arrivals) - started


async def test_notifier_throughput_and_latency(system, servers):
    broker = Broker(servers.rabbitmq_url, "bench-publisher")
    await broker.connect()
    try:
        paced, paced_seconds = await publish_and_collect(system, broker, rate=100)
        burst, burst_seconds = await publish_and_collect(system, broker, rate=None)
    finally:
        await broker.close()
    print(f"\n--- notifier: {EVENTS} booking.confirmed events, one mail each, one notifier process")
    print(
        f"at 100 events/s: publish -> SMTP accepted p50 {percentile(paced, 50) * 1000:.0f} ms, "
        f"p99 {percentile(paced, 99) * 1000:.0f} ms ({len(paced)} mails in {paced_seconds:.1f}s)"
    )
    print(
        f"as fast as possible: {EVENTS / burst_seconds:.0f} mails/s; publish -> accepted p50 "
        f"{percentile(burst, 50) * 1000:.0f} ms, p99 {percentile(burst, 99) * 1000:.0f} ms"
    )
    assert len(paced) == len(burst) == EVENTS
