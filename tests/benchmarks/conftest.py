"""Benchmarks run the system with its production settings, plus the PostgreSQL-only baseline beside it,
and collect every figure into ``docs/benchmark-results.json`` and the table in ``docs/benchmarks.md``."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.edge import edge_process
from devstack.supervisor import Process, wait_ready
from tests.benchmarks.cpu import with_children
from tests.benchmarks.results import Results
from tests.conftest import RunningSystem, free_port_block, running_system

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
async def system(servers, tmp_path_factory) -> AsyncIterator[RunningSystem]:
    """As ``make run`` starts it: no test-only timings."""
    async with running_system(servers, tmp_path_factory.mktemp("bench-logs"), {}) as running:
        yield running


@dataclass(frozen=True)
class Baseline:
    url: str  # the baseline service itself
    public_url: str  # an entry of its own, routing /bookings and /availability to the baseline
    database_url: str
    pids: dict[int, str]  # its processes, for the CPU meter


@pytest.fixture(scope="session")
async def baseline(system, servers) -> AsyncIterator[Baseline]:
    """The PostgreSQL-only booking path, in processes shaped like the booking service's (as many as
    the system runs of it), behind a public entry of its own configured like the system's (the
    same nginx routes)."""
    count = system.settings.process_count("booking")
    port = free_port_block(count + 1)  # the baseline's processes, then its entry
    database_url = servers.database_url("baseline")
    env = {
        "DATABASE_URL": database_url,
        "RABBITMQ_URL": servers.rabbitmq_url,
        "ENVIRONMENT": "development",
        "JWKS_URL": f"{system.settings.url_of('gateway')}/.well-known/jwks.json",  # the product's people, verified alike
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    log = system.logs / "baseline.log"
    prepare = Process("baseline-prepare", ["-m", "tests.benchmarks.baseline", "prepare"], env, log)
    await prepare.start()
    assert await prepare.wait() == 0, log.read_text()[-2000:]
    addresses = [f"127.0.0.1:{port + i}" for i in range(count)]
    services = [
        Process(f"baseline-{i}", ["-m", "tests.benchmarks.baseline"], env | {"HTTP_PORT": str(port + i)}, log)
        for i in range(count)
    ]
    upstreams = system.settings.upstreams() | {"booking": addresses, "availability": addresses}
    entry_url = f"http://127.0.0.1:{port + count}"
    entry = edge_process(
        "baseline-edge", system.logs / "baseline-edge", entry_url[7:], upstreams, system.logs / "baseline-edge.log"
    )
    started = [(service, f"http://{address}") for service, address in zip(services, addresses, strict=True)]
    try:
        for process, url in [*started, (entry, entry_url)]:
            await process.start()
            await wait_ready(f"{url}/healthz" if process is entry else f"{url}/readyz", process)
        named = {service.proc.pid: "booking" for service in services} | {entry.proc.pid: "edge"}  # named as the product's are
        yield Baseline(f"http://{addresses[0]}", entry_url, database_url, with_children(named))
    finally:
        await entry.stop()
        for service in services:
            await service.stop()


@dataclass(frozen=True)
class Floor:
    url: str
    database_url: str
    key_prefix: str  # its own counters
    redis_url: str
    pids: dict[int, str]


@pytest.fixture(scope="session")
async def floor(system, servers) -> AsyncIterator[Floor]:
    """The least work a correct Redis + Lua booking can do (``floor.py``), in one process."""
    port = free_port_block(1)
    database_url = servers.database_url("floor")
    key_prefix = f"{servers.run_id}:floor"
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": servers.redis_url,
        "REDIS_KEY_PREFIX": key_prefix,
        "HTTP_PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    prepare = Process("floor-prepare", ["-m", "tests.benchmarks.floor", "prepare"], env, system.logs / "floor.log")
    await prepare.start()
    assert await prepare.wait() == 0, (system.logs / "floor.log").read_text()[-2000:]
    service = Process("floor", ["-m", "tests.benchmarks.floor"], env, system.logs / "floor.log")
    try:
        await service.start()
        await wait_ready(f"http://127.0.0.1:{port}/readyz", service)
        yield Floor(f"http://127.0.0.1:{port}", database_url, key_prefix, servers.redis_url, {service.proc.pid: "booking"})
    finally:
        await service.stop()


@pytest.fixture(scope="session")
def results(system) -> Results:
    collected = Results()
    yield collected
    if collected.tables:
        collected.write(ROOT / "docs" / "benchmark-results.json", ROOT / "docs" / "benchmarks.md")
