"""The steady load every fault test runs through the public entry while it injects its fault:
booking attempts at a fixed arrival rate (open loop: a stalled system does not slow the load
down), each by a client of its own with an Idempotency-Key, some confirmed bookings cancelled by
their client, and the event's shifts changed now and then by an admin.

An attempt whose answer is a 5xx, a timeout or a broken connection is ambiguous: it may or may
not have booked. After the fault, ``settle`` retries each one with its own key, as a client
should, until the answer is definite."""

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp

from common.auth import Identity
from common.roles import Role
from devstack.client import ApiClient
from devstack.mailsink import REFUSED_PREFIX
from tests.integration.helpers import add_shift, create_event, create_professional, local, sign_in_admin, wait_for_availability

UTC = ZoneInfo("UTC")
DEFINITE = {200, 201, 409, 422}


@dataclass
class Attempt:
    key: str
    token: str
    client_id: str
    body: dict
    answers: list[str] = field(default_factory=list)  # every status (or error) it got, in order
    booking: dict | None = None  # the booking, once an answer said so

    @property
    def settled(self) -> bool:
        return bool(self.answers) and self.answers[-1] in {str(s) for s in DEFINITE}


@dataclass
class Scene:
    """An event, its professionals and shifts, and the admin who changes them."""

    event: dict
    day: date
    slots: list[datetime]
    shifts: list[dict]
    admin: ApiClient


async def scene(api: ApiClient, system, professionals: int = 8, capacity: int = 8) -> Scene:
    admin = await sign_in_admin(api, system)
    day = date.today() + timedelta(days=3)
    event = await create_event(admin, timezone="UTC", start_date=day, end_date=day, opens_at="09:00", closes_at="17:00")
    shifts = []
    for i in range(professionals):
        pro, _ = await create_professional(api, admin, name=f"Dr. Fault {i}")
        shifts.append(await add_shift(admin, event, local(day, 9, 0, UTC), local(day, 17, 0, UTC), capacity, professional=pro))
    await wait_for_availability(
        api, event["id"], day, lambda b: all(s["remaining"] == professionals * capacity for s in b["slots"])
    )
    slots = [local(day, 9, 0, UTC) + timedelta(minutes=30 * i) for i in range(16)]
    return Scene(event, day, slots, shifts, admin)


@asynccontextmanager
async def through_an_entry(http: aiohttp.ClientSession, entries: list[str], method: str, path: str, **kwargs) -> AsyncIterator:
    """A request to ``/api/v1<path>`` through one of the public entries, as a client of a name with
    several addresses: one refusing the connection (stopped) never saw the request, so the next is
    asked; any other failure is the answer."""
    first = random.randrange(len(entries))
    for n in range(len(entries)):
        try:
            async with http.request(method, f"{entries[(first + n) % len(entries)]}/api/v1{path}", **kwargs) as response:
                yield response
                return
        except aiohttp.ClientConnectorError:
            if n == len(entries) - 1:
                raise


@dataclass
class SteadyLoad:
    system: object
    scene: Scene
    rate: float = 50.0  # attempts a second
    seconds: float = 20.0
    attempts: list[Attempt] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)  # bookings their client cancelled (200)
    shift_changes: int = 0
    seed: int = 15
    refused_share: float = 0.0  # clients whose address the SMTP server refuses (550)

    @property
    def entries(self) -> list[str]:
        return self.system.settings.public_urls

    async def run(self) -> None:
        rng = random.Random(self.seed)
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as http:
            started = time.monotonic()
            tasks = []
            for i in range(int(self.rate * self.seconds)):
                due = started + i / self.rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                tasks.append(asyncio.create_task(self._attempt(http, rng)))
                if i % int(self.rate * 2) == int(self.rate):  # every two seconds, a shift changes
                    tasks.append(asyncio.create_task(self._change_a_shift(http, rng)))
            await asyncio.gather(*tasks)

    async def _attempt(self, http: aiohttp.ClientSession, rng: random.Random) -> None:
        client_id = uuid.uuid4()
        email = f"{REFUSED_PREFIX if rng.random() < self.refused_share else 'c-'}{client_id.hex[:10]}@test.example"
        token = self.system.tokens.issue(
            Identity(id=client_id, role=Role.CLIENT, name=f"Client {client_id.hex[:6]}", email=email)
        )
        body = {"event_id": self.scene.event["id"], "start": rng.choice(self.scene.slots).isoformat(), "email": email}
        attempt = Attempt(str(uuid.uuid4()), token, str(client_id), body)
        self.attempts.append(attempt)
        await self.send(http, attempt)
        if attempt.booking and rng.random() < 0.1:  # a client changes their mind
            await asyncio.sleep(rng.uniform(0.1, 1.0))
            status = await self._call(http, "POST", f"/bookings/{attempt.booking['id']}/cancel", token)
            if status == 200:
                self.cancelled.append(attempt.booking["id"])

    async def send(self, http: aiohttp.ClientSession, attempt: Attempt) -> None:
        headers = {"Authorization": f"Bearer {attempt.token}", "Idempotency-Key": attempt.key}
        try:
            async with through_an_entry(http, self.entries, "POST", "/bookings", json=attempt.body, headers=headers) as response:
                attempt.answers.append(str(response.status))
                if response.status in (200, 201):
                    attempt.booking = await response.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            attempt.answers.append(type(exc).__name__)

    async def _call(self, http: aiohttp.ClientSession, method: str, path: str, token: str, body: dict | None = None) -> int:
        try:
            async with through_an_entry(
                http, self.entries, method, path, json=body, headers={"Authorization": f"Bearer {token}"}
            ) as response:
                return response.status
        except (aiohttp.ClientError, TimeoutError):
            return 0

    async def _change_a_shift(self, http: aiohttp.ClientSession, rng: random.Random) -> None:
        shift = rng.choice(self.scene.shifts)
        capacity = rng.choice([shift["capacity"] - 2, shift["capacity"]])
        if await self._call(http, "PATCH", f"/shifts/{shift['id']}", self.scene.admin.token, {"capacity": capacity}) == 200:
            self.shift_changes += 1

    async def settle(self, deadline_seconds: float = 90.0) -> None:
        """Retry every ambiguous attempt with its own key until its answer is definite."""
        deadline = time.monotonic() + deadline_seconds
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            while unsettled := [a for a in self.attempts if not a.settled]:
                assert time.monotonic() < deadline, f"{len(unsettled)} attempts never got a definite answer"
                await asyncio.gather(*(self.send(http, a) for a in unsettled))
                if any(not a.settled for a in unsettled):
                    await asyncio.sleep(1.0)

    @property
    def acknowledged(self) -> list[Attempt]:
        """Attempts the client was told were booked (201, or 200: the booking its key made)."""
        return [a for a in self.attempts if a.booking is not None]
