"""Two of every service and two public entries (the load through either, as a client of a name
with two addresses) under the fault suite's load (tests/faults/load.py), and the fault checker
after it (nothing lost, duplicated or overbooked, every mail once, counters equal to the record):
once while one instance of each is told to stop in turn (SIGTERM; the entry, nginx, SIGQUIT), as
an orchestrator rolls them, once while one of each is killed (SIGKILL) in turn. Beside the
bookings, readers keep asking availability, the gateway and the shifts service, so each is under
load as it goes. Each test prints a FAULT line, the seconds each stop took, and how many requests
(and mails) each instance answered."""

import asyncio
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from common.roles import Role
from common.settings import ServiceSettings
from devstack.client import ApiClient
from tests.conftest import client_session, running_system
from tests.faults.checker import mails_accepted_but_not_recorded, notifier_rows
from tests.faults.load import SteadyLoad, scene, through_an_entry
from tests.faults.test_fault_suite import (
    accepted_when_it_died,
    behind_a_proxy,
    booking_to_postgresql,
    during,
    settle_and_check,
)

pytestmark = [pytest.mark.fault, pytest.mark.timeout(600)]

EVERY = ("shifts", "availability", "booking", "notifier", "gateway", "edge")
# How each is told to stop, as its orchestrator would: nginx stops gracefully on SIGQUIT (the stop
# signal of its image); on SIGTERM it drops what is in flight.
STOP_SIGNAL = dict.fromkeys(EVERY, signal.SIGTERM) | {"edge": signal.SIGQUIT}


@pytest.fixture(scope="module")
async def doubled(servers, tmp_path_factory) -> AsyncIterator:
    """A system of its own with two processes of every service, behind two entries."""
    overrides = {"HOLD_SECONDS": "3", "RECONCILE_SECONDS": "4"}
    logs = tmp_path_factory.mktemp("doubled-logs")
    async with running_system(servers, logs, overrides, processes=dict.fromkeys(EVERY, 2), name="doubled") as running:
        yield running


class Readers:
    """Availability, the gateway and the shifts service asked all along, through either entry."""

    def __init__(self, http, load: SteadyLoad) -> None:
        self.http, self.load = http, load
        self.answers: Counter[str] = Counter()
        self._stop = asyncio.Event()

    async def run(self) -> None:
        event, day = self.load.scene.event, self.load.scene.day
        calls = [
            ("/availability", {"event_id": event["id"], "date": day.isoformat()}),
            ("/events", {}),
            (f"/events/{event['id']}", {}),
            ("/me", {}),
        ]
        headers = {"Authorization": f"Bearer {self.load.scene.admin.token}"}
        while not self._stop.is_set():
            for path, params in calls:
                try:
                    async with through_an_entry(
                        self.http, self.load.entries, "GET", path, params=params, headers=headers
                    ) as answer:
                        self.answers[str(answer.status)] += 1
                except Exception as exc:  # a broken connection is an answer too: counted, not hidden
                    self.answers[type(exc).__name__] += 1
            await asyncio.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.answers.items() if not status.isdigit() or status.startswith("5"))


def answered_by_instance(system) -> dict[str, list[int]]:
    """Requests each process answered (each entry: the requests it took in), from the entries' logs
    of upstream addresses."""
    seen, taken_in = Counter(), []
    for index in range(2):
        lines = (system.stack.edge_dir(index) / "upstreams.log").read_text().splitlines()
        taken_in.append(len(lines))
        for line in lines:
            addresses, _, _status = line.rpartition(" ")
            for address in addresses.replace(" : ", ",").split(","):  # several: nginx asked the next one too
                seen[address.strip()] += 1
    return {"edge": taken_in} | {
        service: [seen[f"127.0.0.1:{system.settings.port_of(service, i)}"] for i in range(2)]
        for service in ("gateway", "shifts", "availability", "booking")
    }


async def mails_by_instance(system) -> list[int]:
    rows = await notifier_rows(system, "SELECT claimed_by, count(*) AS n FROM sent_mail WHERE status = 'sent' GROUP BY 1")
    return sorted((row["n"] for row in rows), reverse=True)


async def under_load(doubled, redis, name: str, act) -> tuple[SteadyLoad, Readers, dict]:
    """The steady load and the readers, ``act`` beside them; then the checker."""
    async with client_session() as http:
        api = ApiClient(http, doubled.public_url)
        load = SteadyLoad(doubled, await scene(api, doubled))
        readers = Readers(http, load)
        reading = asyncio.create_task(readers.run())
        outcome: dict = {}

        async def inject() -> int:
            try:
                return await act(outcome)
            finally:
                readers.stop()

        faults = await during(load, inject)
        await reading
        crashed = outcome.get("in_the_window")
        duplicable = await accepted_when_it_died(doubled, load, crashed) if crashed else 0
        await settle_and_check(name, load, doubled, redis, faults, mails_duplicated_at_most=duplicable)
    return load, readers, outcome


async def test_two_of_everything_each_stopped_by_sigterm_in_turn_under_load(doubled, redis):
    bound = ServiceSettings().drain_seconds * 3  # requests, then messages, then the outbox

    async def roll(took: dict) -> int:
        for service in EVERY:
            await asyncio.sleep(2.5)
            took[service] = round(await doubled.stack.stop_instance(service, 0, STOP_SIGNAL[service]), 2)
            await doubled.stack.start_instance(service, 0)
        return len(EVERY)

    load, readers, took = await under_load(doubled, redis, "two of everything, one of each stopped by SIGTERM in turn", roll)
    by_instance = answered_by_instance(doubled)
    mails = await mails_by_instance(doubled)
    booking_answers = Counter(answer for attempt in load.attempts for answer in attempt.answers)
    print(f"SIGTERM took (s): {took}; bound {bound:.0f} s")
    print(f"answered per instance: {by_instance}; mails sent per notifier instance (incl. earlier runs): {mails}")
    print(f"booking answers: {dict(booking_answers)}; readers' answers: {dict(readers.answers)}")
    assert all(seconds < bound for seconds in took.values()), took
    assert not [a for a in booking_answers if not a.isdigit() or a.startswith("5")], booking_answers
    assert readers.server_errors == 0, readers.answers
    assert all(min(counts) > 0 for counts in by_instance.values()), by_instance
    assert len(mails) >= 2 and mails[1] > 0, mails


async def test_two_of_everything_one_of_each_killed_in_turn_under_load(doubled, redis):
    async def kill_each(outcome: dict) -> int:
        outcome["in_the_window"] = []  # per notifier crash: mails the SMTP server had and it had not recorded
        for service in EVERY:
            await asyncio.sleep(2.5)
            await doubled.stack.stop_instance(service, 1, signal.SIGKILL)
            if service == "notifier":  # each goes again once (README, "Mail, exactly once"): that, and nothing else
                outcome["in_the_window"].append(await mails_accepted_but_not_recorded(doubled))
            await asyncio.sleep(0.3)
            await doubled.stack.start_instance(service, 1)
        return len(EVERY)

    started = time.monotonic()
    await under_load(doubled, redis, "two of everything, one of each killed (SIGKILL) in turn", kill_each)
    print(f"answered per instance: {answered_by_instance(doubled)} ({time.monotonic() - started:.0f} s)")


async def test_bookings_in_flight_when_their_instance_gets_sigterm_are_finished_and_answered(doubled):
    """PostgreSQL made slow (150 ms a message, each way) for the booking instances, so bookings are
    certainly in flight when one instance is told to stop: each is committed and answered 201
    before the process exits, within its drain bound (killed instead, they are cut)."""
    async with behind_a_proxy(doubled, "booking", *booking_to_postgresql(doubled)) as proxied:
        async with client_session() as http:
            the_scene = await scene(ApiClient(http, doubled.public_url), doubled, professionals=2, capacity=8)
            url = f"{doubled.settings.url_of('booking', 0)}/bookings"  # that instance itself, not the entry

            async def book(n: int) -> str:
                token = doubled.token_for(Role.CLIENT, name=f"In flight {n}")
                body = {"event_id": the_scene.event["id"], "start": the_scene.slots[n].isoformat()}
                try:
                    async with http.post(url, json=body, headers={"Authorization": f"Bearer {token}"}) as response:
                        return str(response.status)
                except Exception as exc:
                    return type(exc).__name__

            proxied.proxy.latency = 0.15
            in_flight = [asyncio.create_task(book(n)) for n in range(8)]
            await asyncio.sleep(0.5)
            took = await doubled.stack.stop_instance("booking", 0, signal.SIGTERM)
            answers = await asyncio.gather(*in_flight)
            proxied.proxy.latency = 0
            print(f"SIGTERM with 8 bookings in flight: answers {answers}, exited after {took:.2f} s")
            assert answers == ["201"] * 8 and took < ServiceSettings().drain_seconds * 3
            await doubled.stack.start_instance("booking", 0)
