"""Steps the integration tests share: signing in, creating things, waiting for availability."""

import asyncio
import json
import subprocess
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, time
from urllib.parse import unquote, urlsplit

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from devstack.client import ApiClient


async def sign_in_admin(api: ApiClient, system) -> ApiClient:
    return await api.sign_in(system.settings.admin_email, system.settings.admin_password.get_secret_value())


async def create_event(admin: ApiClient, **fields) -> dict:
    body = {"name": f"Event {uuid.uuid4().hex[:6]}", "opens_at": "09:00", "closes_at": "17:00", "slot_minutes": 30} | fields
    for day_field in ("start_date", "end_date"):
        if isinstance(body[day_field], date):
            body[day_field] = body[day_field].isoformat()
    return await admin.call("POST", "/events", expect=201, json=body)


async def create_professional(
    api: ApiClient, admin: ApiClient, name: str = "Dr. Test", timezone: str = "UTC"
) -> tuple[dict, ApiClient]:
    email, password = f"{uuid.uuid4().hex[:10]}@test.example", "pro-password-1"
    pro = await admin.call(
        "POST", "/professionals", expect=201, json={"email": email, "password": password, "name": name, "timezone": timezone}
    )
    return pro, await api.sign_in(email, password)


def local(day: date, hour: int, minute: int, zone) -> datetime:
    return datetime.combine(day, time(hour, minute), zone)


async def wait_for_availability(api: ApiClient, event_id: str, day: date, predicate, timeout: float = 10.0, **params) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        query = {"event_id": event_id, "date": day.isoformat()} | params
        status, body = await api.request("GET", "/availability", params=query)
        if status == 200 and predicate(body):
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"availability never matched; last answer {status}: {body}")
        await asyncio.sleep(0.05)


def slot_at(availability: dict, start: datetime) -> dict:
    return next(s for s in availability["slots"] if datetime.fromisoformat(s["start"]) == start)


def statuses(availability: dict) -> dict[str, tuple[str, int]]:
    """Local HH:MM -> (status, remaining), in the answer's own timezone."""
    return {datetime.fromisoformat(s["start"]).strftime("%H:%M"): (s["status"], s["remaining"]) for s in availability["slots"]}


async def booking_rows(servers, query: str, *args) -> list:
    """Rows straight from the booking service's database: the system of record."""
    import asyncpg

    conn = await asyncpg.connect(servers.database_url("booking").replace("+asyncpg", ""))
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def add_shift(
    caller: ApiClient, event: dict, start: datetime, end: datetime, capacity: int = 1, professional: dict | None = None
) -> dict:
    """A shift, added by the professional themself, or by an admin for ``professional``."""
    body = {"event_id": event["id"], "capacity": capacity, "start": start.isoformat(), "end": end.isoformat()}
    if professional is not None:
        body["professional_id"] = professional["id"]
    return await caller.call("POST", "/shifts", expect=201, json=body)


def decoded(state: dict[str, dict[str, str]]) -> dict:
    """An event's counters as stored, their JSON fields parsed: equal when they mean the same."""
    return {name: {k: json.loads(v) if v[:1] in "{[" else v for k, v in fields.items()} for name, fields in state.items()}


def _suspend_queue(rabbitmq_url: str, queue: str, action: str) -> None:
    vhost = unquote(urlsplit(rabbitmq_url).path[1:]) or "/"
    program = (
        f'{{ok,Q}}=rabbit_amqqueue:lookup(rabbit_misc:r(<<"{vhost}">>,queue,<<"{queue}">>)),'
        f" P=case amqqueue:get_pid(Q) of {{N,_}}->whereis(N); X->X end, sys:{action}(P), ok."
    )
    subprocess.run(["rabbitmqctl", "eval", program], check=True, capture_output=True, timeout=60)


@asynccontextmanager
async def deliveries_held(rabbitmq_url: str, queue: str) -> AsyncIterator[None]:
    """The queue's deliveries held back inside RabbitMQ (its queue process suspended): a consumer
    that lags, faithfully, with none of our processes paused. Messages published meanwhile wait."""
    await asyncio.to_thread(_suspend_queue, rabbitmq_url, queue, "suspend")
    try:
        yield
    finally:
        await asyncio.to_thread(_suspend_queue, rabbitmq_url, queue, "resume")


async def server_sent_events(response) -> AsyncIterator[dict]:
    """The events of a ``text/event-stream`` answer as they come: ``{event, id, data}`` each (data
    parsed as JSON), or ``{comment}`` for a line that only says the stream is alive."""
    fields: dict = {}
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
        elif line:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        elif fields:
            if "data" in fields:
                yield {"event": fields.get("event"), "id": fields.get("id"), "data": json.loads(fields["data"])}
            fields = {}


Samples = Counter  # (service, sample name, labels) -> value, summed over the service's processes


async def scrape(system) -> Samples:
    """Every process's /metrics (each must answer), summed per service."""
    totals: Samples = Counter()
    async with aiohttp.ClientSession() as http:
        for service, addresses in system.settings.scrape_targets().items():
            for address in addresses:
                async with http.get(f"http://{address}/metrics") as response:
                    assert response.status == 200, f"{service} at {address}: {response.status}"
                    text = await response.text()
                for family in text_string_to_metric_families(text):
                    for sample in family.samples:
                        totals[(service, sample.name, frozenset(sample.labels.items()))] += sample.value
    return totals


def total(samples: Samples, service: str, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (s, n, found), v in samples.items() if s == service and n == name and wanted <= found)
