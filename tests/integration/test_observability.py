"""What an operator sees of the running system, with two processes of several services: every
process's /metrics counting what the end-to-end story did, one trace from the booking request to
its mail (spans exported by the real processes over OTLP to a stand-in collector that keeps them in
memory), and Debian's Prometheus scraping every process and answering for the booking rate."""

import asyncio
import json
import re
import uuid
from dataclasses import dataclass

import aiohttp
import pytest

from devstack.client import ApiClient
from tests.conftest import RunningSystem, client_session, free_port_block, loopback_address, running_system
from tests.integration.helpers import Samples, scrape, total
from tests.integration.test_end_to_end import test_admin_professional_and_clients_book_through_the_gateway as story
from tests.span_store import CONSUMER, PRODUCER, SERVER, SpanStore

PROCESSES = {"booking": 2, "notifier": 2, "gateway": 2}
UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class Observed:
    system: RunningSystem
    spans: SpanStore
    before: Samples | None = None  # the scrape before the story


@pytest.fixture(scope="module")
async def observed(servers, tmp_path_factory):
    spans = SpanStore()
    endpoint = await spans.start(free_port_block(1))
    tracing = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    logs = tmp_path_factory.mktemp("observed-logs")
    try:
        async with running_system(servers, logs, tracing, processes=PROCESSES, name="observed", prometheus=True) as system:
            yield Observed(system, spans)
    finally:
        await spans.stop()


@pytest.fixture(scope="module")
async def told(observed) -> Observed:
    """The end-to-end story (one booking made, one refused as full, two mails), then failed sign-ins
    into the limit, once for the module."""
    await every_process_scraped(observed.system)  # so Prometheus sees the story happen
    observed.before = await scrape(observed.system)
    async with client_session(loopback_address()) as http:
        api = ApiClient(http, observed.system.public_url)
        await story(api, observed.system)
        nobody = {"email": f"nobody-{uuid.uuid4().hex[:8]}@test.example", "password": "not-the-password"}
        statuses = [(await api.request("POST", "/auth/login", json=nobody))[0] for _ in range(11)]
    assert statuses == [401] * 10 + [429]
    return observed


async def query(http: aiohttp.ClientSession, system: RunningSystem, promql: str) -> list[dict]:
    async with http.get(f"{system.settings.prometheus_url}/api/v1/query", params={"query": promql}) as response:
        assert response.status == 200
        return (await response.json())["data"]["result"]


async def every_process_scraped(system: RunningSystem) -> list[dict]:
    """Until Prometheus has scraped every process of the stack; its ``up`` series."""
    processes = sum(len(a) for a in system.settings.scrape_targets().values())
    deadline = asyncio.get_running_loop().time() + 30
    async with aiohttp.ClientSession() as http:
        while len(up := await query(http, system, "up == 1")) < processes:
            assert asyncio.get_running_loop().time() < deadline, f"{len(up)} of {processes} processes scraped"
            await asyncio.sleep(0.2)
    return up


async def test_every_process_counts_what_the_story_did(told):
    def caused(samples: Samples, service: str, name: str, **labels: str) -> float:
        return total(samples, service, name, **labels) - total(told.before, service, name, **labels)

    deadline = asyncio.get_running_loop().time() + 20
    while caused(after := await scrape(told.system), "notifier", "mails_total", outcome="sent") < 2:
        assert asyncio.get_running_loop().time() < deadline, "the notifiers did not count the story's two mails"
        await asyncio.sleep(0.2)

    requests = "http_server_request_duration_seconds_count"
    assert caused(after, "booking", "bookings_confirmed_total") == 1
    assert caused(after, "booking", "bookings_refused_total", reason="full") == 1
    assert caused(after, "booking", "bookings_refused_total") == 1
    assert caused(after, "booking", requests, method="POST", route="/bookings", status="201") == 1
    assert caused(after, "booking", requests, method="POST", route="/bookings", status="409") == 1
    assert caused(after, "booking", "messages_handled_total", event_type="shift.created", outcome="handled") == 1
    assert caused(after, "booking", "outbox_events_published_total") == 1  # booking.confirmed
    assert caused(after, "shifts", "outbox_events_published_total") >= 2  # event.created, shift.created
    assert caused(after, "notifier", "messages_handled_total", event_type="booking.confirmed", outcome="handled") == 1
    assert caused(after, "notifier", "mails_total", outcome="sent") == 2  # the client's and the professional's
    assert caused(after, "notifier", "mails_total", outcome="retried") == 0
    assert caused(after, "gateway", "rate_limits_hit_total", limit="sign_in") == 1
    assert caused(after, "gateway", requests, method="POST", route="/api/v1/auth/login", status="429") == 1
    assert caused(after, "availability", requests, method="GET", route="/availability", status="200") >= 2
    assert total(after, "booking", "booking_holds_in_flight") == 0
    assert total(after, "booking", "dead_letter_messages") == 0

    # Bounded labels: no id, no address is ever a label's value.
    values = {value for (_, _, labels) in after for _, value in labels}
    assert not [v for v in values if "@" in v or UUID_TEXT.search(v)]


async def test_one_trace_runs_from_the_booking_request_through_the_outbox_and_broker_to_the_mail(told):
    spans = told.spans
    deadline = asyncio.get_running_loop().time() + 20
    while not (mailed := {s.trace_id for s in spans.spans if s.name == "smtp send"}):
        assert asyncio.get_running_loop().time() < deadline, "no span of a mail sent arrived"
        await asyncio.sleep(0.2)
    assert len(mailed) == 1  # the story's one booking
    trace_id = mailed.pop()
    while len([s for s in spans.trace(trace_id) if s.name == "smtp send"]) < 2:  # the second mail's span
        assert asyncio.get_running_loop().time() < deadline, "the second mail's span did not arrive"
        await asyncio.sleep(0.2)
    trace = spans.trace(trace_id)
    by_id = {s.span_id: s for s in trace}

    def ancestors(span):
        while span.parent_id is not None:
            span = by_id[span.parent_id]  # every parent is in the same trace
            yield span

    [request] = [s for s in trace if s.service == "booking" and s.kind == SERVER]
    assert request.name == "POST /bookings" and request.parent_id is None
    # The request's own work: PostgreSQL and Redis, as children of the request.
    children = [s for s in trace if s.parent_id == request.span_id]
    assert {s.attributes.get("db.system") for s in children} >= {"postgresql", "redis"}
    # The relay, later and in another task, publishes inside the request's trace (kept with the row).
    [publish] = [s for s in trace if s.kind == PRODUCER and s.parent_id == request.span_id]
    assert publish.service == "booking"
    # The notifier (either process) receives it as the publish's child: the context rode in the headers.
    [receive] = [s for s in trace if s.kind == CONSUMER and s.service == "notifier"]
    assert receive.parent_id == publish.span_id
    mails = [s for s in trace if s.name == "smtp send"]
    assert len(mails) == 2 and all(receive in list(ancestors(mail)) for mail in mails)
    # One root, every other span's parent in the trace; a process's first request may also ask the
    # gateway for its keys (the aiohttp client's span, and the gateway's under it).
    assert [s for s in trace if s.parent_id is None] == [request] and all(s.parent_id in by_id for s in trace if s.parent_id)
    assert {"booking", "notifier"} <= {s.service for s in trace} <= {"booking", "notifier", "gateway"}

    # The notifier's log lines of this booking carry its trace.
    lines = [json.loads(line) for line in (told.system.logs / "notifier.log").read_text().splitlines() if line.startswith("{")]
    sent = [line for line in lines if line["message"].startswith("sent booking.confirmed")]
    assert sent and all(line["trace_id"] == trace_id and line["span_id"] for line in sent)


async def test_prometheus_scrapes_every_process_and_answers_the_booking_rate(told):
    system = told.system
    up = await every_process_scraped(system)
    assert {r["metric"]["job"] for r in up} == set(system.settings.scrape_targets())
    async with aiohttp.ClientSession() as http:
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            rate = await query(http, system, "sum(rate(bookings_confirmed_total[5m]))")
            recorded = await query(http, system, "sum(job:bookings_confirmed:rate1m)")
            if rate and float(rate[0]["value"][1]) > 0 and recorded:
                break
            assert asyncio.get_running_loop().time() < deadline, f"booking rate: {rate}"
            await asyncio.sleep(0.5)
        async with http.get(f"{system.settings.prometheus_url}/api/v1/rules") as response:
            groups = (await response.json())["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        assert {r["name"] for r in rules if r["type"] == "alerting"} >= {"BookingErrors", "OutboxNotDraining", "DeadLetters"}
        assert all(rule["health"] == "ok" for rule in rules), [r for r in rules if r["health"] != "ok"]
        assert not await query(http, system, 'ALERTS{alertstate="firing"}')  # a healthy system pages nobody
