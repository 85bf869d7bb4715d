"""Benchmarks run the system with its production settings, plus the PostgreSQL-only baseline beside it,
and collect every figure into ``docs/benchmark-results.json`` and the table in ``docs/benchmarks.md``."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.supervisor import Process, wait_ready
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
    gateway_url: str  # a second gateway, routing /bookings and /availability to the baseline
    database_url: str
    pids: dict[int, str]  # its processes, for the CPU meter


@pytest.fixture(scope="session")
async def baseline(system, servers) -> AsyncIterator[Baseline]:
    """The PostgreSQL-only booking path, in a process shaped like the booking service's, behind a
    gateway of its own that is configured like the system's."""
    port = free_port_block(2)
    database_url = servers.database_url("baseline")
    host, smtp_port = system.stack.smtp
    env = {
        "DATABASE_URL": database_url,
        "RABBITMQ_URL": servers.rabbitmq_url,
        "JWT_SECRET": system.settings.jwt_secret.get_secret_value(),
        "HTTP_PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    prepare = Process("baseline-prepare", ["-m", "tests.benchmarks.baseline", "prepare"], env, system.logs / "baseline.log")
    await prepare.start()
    assert await prepare.wait() == 0, (system.logs / "baseline.log").read_text()[-2000:]
    service = Process("baseline", ["-m", "tests.benchmarks.baseline"], env, system.logs / "baseline.log")
    gateway_env = system.settings.service_env("gateway", host, smtp_port) | {
        "HTTP_PORT": str(port + 1),
        "GATEWAY_PORT": str(port + 1),
        "BOOKING_URL": f"http://127.0.0.1:{port}",
        "AVAILABILITY_URL": f"http://127.0.0.1:{port}",
    }
    gateway = Process("baseline-gateway", ["-m", "gateway"], gateway_env, system.logs / "baseline-gateway.log")
    try:
        for process, url in ((service, f"http://127.0.0.1:{port}"), (gateway, f"http://127.0.0.1:{port + 1}")):
            await process.start()
            await wait_ready(url, process)
        pids = {service.proc.pid: "booking", gateway.proc.pid: "gateway"}  # named as the product's are
        yield Baseline(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}", database_url, pids)
    finally:
        await gateway.stop()
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
        await wait_ready(f"http://127.0.0.1:{port}", service)
        yield Floor(f"http://127.0.0.1:{port}", database_url, key_prefix, servers.redis_url, {service.proc.pid: "booking"})
    finally:
        await service.stop()


@pytest.fixture(scope="session")
def results(system) -> Results:
    collected = Results()
    yield collected
    if collected.tables:
        collected.write(ROOT / "docs" / "benchmark-results.json", ROOT / "docs" / "benchmarks.md")
