"""Notifier: 1,000 booking.confirmed events into the running system; mails/s, and the time from
publish to the SMTP server accepting the mail. Run with ``make bench``."""

import asyncio
import time
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from common.envelope import BOOKINGS_EXCHANGE
from common.messaging import Broker
from common.roles import Role
from tests.benchmarks.loadgen import percentile
from tests.benchmarks.results import Results
from tests.integration.helpers import add_shift, create_event, create_professional, local, sign_in_admin, wait_for_availability
from tests.integration.test_notifier import booking, event_of

pytestmark = pytest.mark.bench

EVENTS = 1000
BOOKINGS_TO_MAIL = 100


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


async def test_notifier_throughput_and_latency(system, servers, results: Results):
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
    results.row(
        "Other figures",
        what=f"notifier: {EVENTS} booking.confirmed published at 100/s → mail accepted by the SMTP server",
        value=f"p50 {percentile(paced, 50) * 1000:.0f} ms, p99 {percentile(paced, 99) * 1000:.0f} ms",
        target="p99 < 1 s",
    )
    results.row(
        "Other figures",
        what=f"notifier: {EVENTS} events published at once",
        value=f"{EVENTS / burst_seconds:.0f} mails/s (one notifier process)",
        target="",
    )


async def test_booking_to_mail(api, system, results: Results):
    """From the 201 at the public entry to the client's mail at the SMTP server, at 10 bookings/s."""
    admin = await sign_in_admin(api, system)
    zone = ZoneInfo("Europe/Paris")
    day = datetime.now(zone).date() + timedelta(days=4)
    event = await create_event(admin, timezone=zone.key, start_date=day, end_date=day)
    _, pro = await create_professional(api, admin)
    await add_shift(pro, event, local(day, 9, 0, zone), local(day, 17, 0, zone), capacity=10)
    await wait_for_availability(api, event["id"], day, lambda a: any(s["remaining"] for s in a["slots"]))
    confirmed_at: dict[str, float] = {}
    started = time.time()
    for i in range(BOOKINGS_TO_MAIL):
        email = f"mail-bench-{i}-{uuid.uuid4().hex[:6]}@test.example"
        client = api.as_user(system.token_for(Role.CLIENT, name=f"Mail {i}"))
        start = local(day, 9, 0, zone) + timedelta(minutes=30 * (i % 16))
        await client.call(
            "POST", "/bookings", expect=201, json={"event_id": event["id"], "start": start.isoformat(), "email": email}
        )
        confirmed_at[email] = time.time()
        await asyncio.sleep(max(0.0, started + (i + 1) / 10 - time.time()))
    for email in confirmed_at:
        await asyncio.to_thread(system.mail.wait_for, 1, 30, email)
    arrived = {m["To"]: at for at, m in system.mail.arrivals() if m["To"] in confirmed_at}
    delays = [arrived[email] - at for email, at in confirmed_at.items()]
    p50, p99 = percentile(delays, 50) * 1000, percentile(delays, 99) * 1000
    print(
        f"\nbooking confirmed (201 at the public entry) -> client's mail at the SMTP server: p50 {p50:.0f} ms, p99 {p99:.0f} ms"
    )
    results.row(
        "Other figures",
        what=f"booking (201 at the public entry) → client's mail at the SMTP server ({BOOKINGS_TO_MAIL} bookings at 10/s)",
        value=f"p50 {p50:.0f} ms, p99 {p99:.0f} ms",
        target="",
    )
