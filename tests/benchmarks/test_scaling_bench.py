"""The booking workloads (spread, flash crowd) side by side in one run on: the product as ``make
run`` starts it (one Redis server, two booking processes, one of everything else), the product
with two of every service, the product on a Redis Cluster of three masters, and the floor. The
flash crowd is one hot event: on the cluster it lives on one shard, so it is what one hot event
can take there. Run with ``make bench``."""

import random
import time
from datetime import date, datetime, timedelta

import pytest

from common.roles import Role
from devstack.client import ApiClient
from notifier.settings import Settings as NotifierSettings
from tests.benchmarks.cpu import with_children
from tests.benchmarks.results import Results
from tests.benchmarks.test_booking_bench import (
    CLIENTS,
    DAYS,
    FLASH_CAPACITY,
    FLASH_ROUNDS,
    PROFESSIONALS,
    ZONE,
    Path,
    check_invariants,
    confirmed_rate,
    cpu_rows,
    create_professionals,
    flash_crowd,
    load_floor_counters,
    make_event,
    purge_queue,
    record,
    spread,
    week_shifts,
)
from tests.conftest import client_session, running_system
from tests.integration.helpers import local, sign_in_admin

pytestmark = pytest.mark.bench

TABLE = "Booking across instances and a Redis Cluster, through the public entry (spread and flash crowd)"
EVERY = ("shifts", "availability", "booking", "notifier", "gateway")


def flash_shifts(day: date):  # three slots of 2 x 10, from two of the professionals
    return local(day, 10, 0, ZONE), local(day, 11, 30, ZONE), FLASH_CAPACITY // 2


async def a_path(name: str, system, api: ApiClient, first: date) -> tuple[Path, list[dict]]:
    """A week's event and a flash crowd's, made through ``system``'s own API; clients as its gateway signs them."""
    admin = await sign_in_admin(api, system)
    people, professionals = await create_professionals(admin, api, PROFESSIONALS)
    week = await make_event(api, admin, professionals, first, DAYS, week_shifts)
    flash = await make_event(api, admin, professionals[:2], first, 1, flash_shifts)
    clients = [{"token": system.token_for(Role.CLIENT, name=f"Client {i}", timezone=ZONE.key), "id": i} for i in range(CLIENTS)]
    flash_slots = [local(first, 10, 0, ZONE) + timedelta(minutes=30 * i) for i in range(FLASH_ROUNDS)]
    pids = with_children({p.proc.pid: p.group for p in system.stack.supervisor.processes})
    return Path(name, system.public_url, pids, clients, week, week, flash, flash_slots), people


async def measure(name: str, system, http, first: date, floor=None) -> tuple[Path, dict]:
    """One path's spread and flash crowd (the notifier stopped meanwhile: its mail would take a core
    from the workload), then its invariants. ``floor``: bookings go to the floor process instead,
    on counters of its own (events made through ``system``)."""
    api = ApiClient(http, system.public_url)
    path, people = await a_path(name, system, api, first)
    if floor is not None:
        path.booking_url, path.pids = f"{floor.url}/bookings", floor.pids
        for event in (path.week, path.flash):
            await load_floor_counters(floor, api, event, people)
    await system.stack.kill("notifier")
    random.seed(name)
    try:
        report = {"spread": await spread(path), "flash": await flash_crowd(path)}
    finally:
        await purge_queue(system.settings.rabbitmq_url, NotifierSettings().queue_name)
        await system.stack.restart("notifier")
    if floor is None:

        async def counters(event_id: str, day: date) -> list[dict]:
            return (await api.call("GET", "/availability", params={"event_id": event_id, "date": day.isoformat()}))["slots"]

        checked = await check_invariants(path, system.settings.database_for("booking"), counters, events=[path.week, path.flash])
        print(f"{name}: invariants hold over {checked} confirmed bookings")
    return path, report


@pytest.mark.timeout(1800)
async def test_booking_across_instances_and_a_cluster(system, servers, redis_cluster, floor, tmp_path_factory, results: Results):
    """One system at a time beside the session's (PostgreSQL's 100 connections do not hold three)."""
    started = time.perf_counter()
    first = datetime.now(ZONE).date() + timedelta(days=3)
    others = {
        "product, two of everything": {"processes": dict.fromkeys(EVERY, 2), "name": "bench_doubled"},
        "product on a Redis Cluster": {"name": "bench_cluster", "redis_cluster": redis_cluster},
    }
    reports, paths = {}, []
    async with client_session() as http:
        for name, system_of in [("product (make run)", None), *others.items(), ("floor", None)]:
            if system_of is None:
                path, reports[name] = await measure(name, system, http, first, floor if name == "floor" else None)
            else:
                logs = tmp_path_factory.mktemp(system_of["name"])
                async with running_system(servers, logs, {}, **system_of) as each:
                    path, reports[name] = await measure(name, each, http, first)
            paths.append(path)
    print(f"\nmeasured in {time.perf_counter() - started:.0f} s")

    floor_spread = confirmed_rate(reports["floor"]["spread"])
    floor_flash = reports["floor"]["flash"].kinds["book"].rate
    print(f"\n--- {TABLE}")
    for path in paths:
        run_of = reports[path.name]
        record(
            results,
            "spread",
            path.name,
            run_of["spread"],
            target=f"{confirmed_rate(run_of['spread']) / floor_spread:.2f} x floor",
            table=TABLE,
        )
        flash_rate = run_of["flash"].kinds["book"].rate
        record(
            results,
            f"flash crowd, one hot event ({FLASH_ROUNDS} x 2,000 clients, capacity {FLASH_CAPACITY})",
            path.name,
            run_of["flash"],
            target=f"{flash_rate / floor_flash:.2f} x floor",
            table=TABLE,
        )
        for label, report in run_of.items():
            cpu_rows(results, path, label, report, table=f"CPU per request (ms), by process: {TABLE[: TABLE.index(',')]}")
        print(
            f"  {path.name}: spread {confirmed_rate(run_of['spread']):,.0f} confirmed/s, "
            f"flash {flash_rate:,.0f} attempts/s (p99 {run_of['flash'].kinds['book'].p99_ms:.1f} ms)"
        )
    for path in paths:
        flash = reports[path.name]["flash"]
        assert flash.status("book", 201) == FLASH_CAPACITY * FLASH_ROUNDS, path.name
        assert not [c for r in reports[path.name].values() for k in r.kinds.values() for c in k.statuses if c[0] == "5"]
