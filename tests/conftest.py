"""Test servers and per-run isolation.

Servers come from ``TEST_POSTGRES_URL``, ``TEST_REDIS_URL`` and ``TEST_RABBITMQ_URL``; where one is
not given and a Docker engine exists, testcontainers starts it. Each run gets its own databases
(``<run>_<service>``), its own RabbitMQ vhost and its own Redis key prefix, and removes them after.
"""

import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
import pytest
from redis.asyncio import Redis

from booking.adapters.capacity import CapacityStore
from common.auth import Identity, TokenSigner, new_private_key_pem
from common.roles import Role
from common.settings import ServiceSettings
from devstack.client import ApiClient
from devstack.config import StackSettings
from devstack.mailsink import MailSink
from devstack.stack import Stack

# Helpers that assert on behalf of tests: their failures should say what they compared.
pytest.register_assert_rewrite("tests.faults.checker")


@dataclass(frozen=True)
class Servers:
    postgres_url: str  # server only, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432
    redis_url: str
    rabbitmq_url: str  # with this run's vhost
    run_id: str
    vhosts: list[str]  # this run's vhosts, all removed at the end

    def database_url(self, name: str) -> str:
        return f"{self.postgres_url}/{self.run_id}_{name}"

    def another_vhost(self, suffix: str) -> str:
        """The URL of one more vhost of this run's, for a second system that must not share queues."""
        if not self.vhosts:
            pytest.skip("needs rabbitmqctl to make a second vhost")
        name = f"{self.run_id}_{suffix}"
        _add_vhost(name, urlsplit(self.rabbitmq_url).username or "guest")
        self.vhosts.append(name)
        return _with_vhost(self.rabbitmq_url, name)


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return False


def _from_env_or_container(variable: str, start_container, stack: list) -> str:
    if url := os.environ.get(variable):
        return url
    if not _docker_available():
        pytest.exit(f"set {variable} (no Docker engine here for testcontainers)", returncode=2)
    container, url = start_container()
    stack.append(container)
    return url


def _postgres_container():
    from testcontainers.postgres import PostgresContainer

    container = PostgresContainer("postgres:15", driver="asyncpg").start()
    url = urlsplit(container.get_connection_url())
    return container, urlunsplit((url.scheme, url.netloc, "", "", ""))


def _redis_container():
    from testcontainers.redis import RedisContainer

    container = RedisContainer("redis:7").start()
    return container, f"redis://{container.get_container_host_ip()}:{container.get_exposed_port(6379)}/0"


def _rabbitmq_container():
    from testcontainers.rabbitmq import RabbitMqContainer

    container = RabbitMqContainer("rabbitmq:3.10").start()
    return container, f"amqp://guest:guest@{container.get_container_host_ip()}:{container.get_exposed_port(5672)}/"


def _with_vhost(url: str, vhost: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), parts.query, ""))


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


def _add_vhost(name: str, user: str) -> None:
    _rabbitmqctl("add_vhost", name)
    _rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    run_id = "t" + uuid.uuid4().hex[:10]
    containers: list = []
    postgres = _from_env_or_container("TEST_POSTGRES_URL", _postgres_container, containers).rstrip("/")
    redis_url = _from_env_or_container("TEST_REDIS_URL", _redis_container, containers)
    rabbitmq = _from_env_or_container("TEST_RABBITMQ_URL", _rabbitmq_container, containers)
    vhosts = []
    if not containers and shutil.which("rabbitmqctl") is not None:
        _add_vhost(run_id, urlsplit(rabbitmq).username or "guest")
        vhosts.append(run_id)
        rabbitmq = _with_vhost(rabbitmq, run_id)
    servers = Servers(postgres, redis_url, rabbitmq, run_id, vhosts)
    try:
        yield servers
    finally:
        asyncio.run(_drop_run_data(servers))
        for vhost in vhosts:
            _rabbitmqctl("delete_vhost", vhost)
        for container in containers:
            container.stop()


async def _drop_run_data(servers: Servers) -> None:
    import asyncpg

    conn = await asyncpg.connect(servers.postgres_url.replace("+asyncpg", "") + "/postgres")
    try:
        names = await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", servers.run_id + "\\_%")
        for row in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
    finally:
        await conn.close()
    redis = Redis.from_url(servers.redis_url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{servers.run_id}*", count=1000)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


SIGNING_KEY = new_private_key_pem()  # the test run's gateway signs with this; the tests hold it as its operator would


def free_port_block(size: int) -> int:
    """The first of ``size`` consecutive ports nobody listens on, below the kernel's ephemeral range
    (from 32768): there an outgoing connection could take a port while a killed service is down,
    and the service could not bind it again when restarted."""
    for _ in range(200):
        base = random.randint(20000, 32700 - size)
        sockets = []
        try:
            for port in range(base, base + size):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                sockets.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free ports")


@pytest.fixture
async def redis(servers) -> AsyncIterator[Redis]:
    client = Redis.from_url(servers.redis_url, decode_responses=True)
    yield client
    await client.aclose()


@dataclass(frozen=True)
class ClusterNodes:
    home: Path
    ports: list[int]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}"

    def start(self, port: int) -> None:
        """A master (again, after a restart: its slots kept in its nodes file, its data gone)."""
        subprocess.run(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", f"nodes-{port}.conf", "--dir", str(self.home), "--save", "", "--appendonly", "no",
             "--daemonize", "yes", "--logfile", str(self.home / f"{port}.log")],
            check=True, timeout=30,
        )  # fmt: skip
        _wait_for(lambda: _redis_cli(port, "ping") == "PONG", f"redis-server on {port}")

    def wait_until_whole(self) -> None:
        for port in self.ports:
            _wait_for(lambda port=port: "cluster_state:ok" in _redis_cli(port, "cluster", "info"), f"the cluster on {port}")


@pytest.fixture(scope="session")
def redis_cluster_nodes(tmp_path_factory) -> Iterator[ClusterNodes]:
    """A Redis Cluster of three masters on this machine (Debian's redis-server and redis-cli), for the run."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("a Redis Cluster needs redis-server and redis-cli")
    base = free_port_block(3)
    nodes = ClusterNodes(tmp_path_factory.mktemp("redis-cluster"), [base, base + 1, base + 2])
    try:
        for port in nodes.ports:
            nodes.start(port)
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in nodes.ports), "--cluster-replicas", "0",
             "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        nodes.wait_until_whole()
        yield nodes
    finally:
        for port in nodes.ports:
            subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True, timeout=30)


@pytest.fixture(scope="session")
def redis_cluster(redis_cluster_nodes) -> str:
    """The URL of a node of the run's Redis Cluster."""
    return redis_cluster_nodes.url


def _redis_cli(port: int, *command: str) -> str:
    done = subprocess.run(["redis-cli", "-p", str(port), *command], capture_output=True, text=True, timeout=10)
    return done.stdout.strip()


def _wait_for(condition, what: str, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not ready within {timeout} s"
        time.sleep(0.1)


@dataclass(frozen=True)
class RedisKind:
    url: str
    cluster: bool

    def client(self, decode_responses: bool = True) -> Redis:
        from redis.asyncio.cluster import RedisCluster

        kind = RedisCluster if self.cluster else Redis
        return kind.from_url(self.url, decode_responses=decode_responses)


@pytest.fixture(params=["one server", "cluster"])
def redis_kind(request, servers) -> RedisKind:
    """Redis, once one server and once a cluster of three masters: for the tests of what runs on both."""
    if request.param == "cluster":
        return RedisKind(request.getfixturevalue("redis_cluster"), cluster=True)
    return RedisKind(servers.redis_url, cluster=False)


@pytest.fixture
async def redis_of_either_kind(redis_kind) -> AsyncIterator[Redis]:
    client = redis_kind.client()
    yield client
    await client.aclose()


@pytest.fixture
def key_prefix(servers) -> str:
    """A prefix of this run's, new for each test, so tests never see each other's counters."""
    return f"{servers.run_id}:{uuid.uuid4().hex[:8]}"


@pytest.fixture
def store(redis, key_prefix) -> CapacityStore:
    return CapacityStore(redis, key_prefix)


@dataclass
class RunningSystem:
    settings: StackSettings
    mail: MailSink
    public_url: str  # the public entry: what clients reach
    logs: Path
    tokens: TokenSigner
    stack: Stack

    async def command(self, service: str, *args: str, timeout: float = 120) -> tuple[int, dict]:
        """``python -m <service> <args>`` as an operator runs it beside the running system: its exit
        code and the JSON report it prints last."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            service,
            *args,
            env=os.environ | self.settings.service_env(service, "127.0.0.1", 25),
            stdout=asyncio.subprocess.PIPE,
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
        lines = output.decode().strip().splitlines()
        return process.returncode, json.loads(lines[-1]) if lines else {}

    @property
    def settings_defaults(self) -> ServiceSettings:
        return ServiceSettings()

    def token_for(self, role: Role, name: str = "Test User", email: str | None = None, timezone: str = "UTC") -> str:
        """A token as the gateway would issue it, for callers the test does not need to register."""
        return self.tokens.issue(Identity(id=uuid.uuid4(), role=role, name=name, email=email, timezone=timezone))


async def counters_built(availability_url: str, timeout: float = 30.0) -> None:
    """Until availability has built the counters at its first start it answers 503 (try again):
    an unknown event answered 404 says it is done."""
    query = {"event_id": str(uuid.uuid4()), "date": "2026-01-01"}
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(f"{availability_url}/availability", params=query) as response:
                if response.status == 404:
                    return
            assert asyncio.get_running_loop().time() < deadline, f"counters not built after {timeout} s ({response.status})"
            await asyncio.sleep(0.1)


@asynccontextmanager
async def running_system(
    servers,
    logs: Path,
    service_overrides: dict[str, str],
    processes: dict[str, int] | None = None,
    name: str = "",
    redis_cluster: str | None = None,
    prometheus: bool = False,
) -> AsyncIterator[RunningSystem]:
    """The whole system, started the way ``make run`` starts it, against this run's servers.
    ``name``: a second system beside the session's, with databases, counters and vhost of its own;
    ``processes``: per service, as ``make run``'s PROCESSES (the entry then logs which answered);
    ``redis_cluster``: a node of a Redis Cluster to use instead of the one Redis server;
    ``prometheus``: Debian's Prometheus too, scraping every process each second."""
    # The entry, SMTP, five services with room for a second process each, a second entry, Prometheus:
    # one block, since a port of a second block could fall inside this one before anything listens there.
    base = free_port_block(2 + 2 * 5 + 1 + 1)
    run = servers.run_id + (f"_{name}" if name else "")
    settings = StackSettings(
        database_url=f"{servers.postgres_url}/{run}",
        redis_url=redis_cluster or servers.redis_url,
        redis_cluster=redis_cluster is not None,
        redis_key_prefix=run,
        rabbitmq_url=servers.another_vhost(name) if name else servers.rabbitmq_url,
        jwt_signing_key=SIGNING_KEY,
        public_port=base,
        smtp_port=base + 1,
        first_service_port=base + 2,
        edge_dir=logs / "edge",
        admin_email="admin@test.example",
        admin_password="admin-test-password",
        mail_dir=logs / "mail",
        service_overrides=service_overrides,
        **({"processes": processes, "edge_upstream_log": True} if processes else {}),
        **(
            {"prometheus_port": base + 2 + 2 * 5 + 1, "prometheus_dir": logs / "prometheus", "prometheus_scrape_seconds": 1}
            if prometheus
            else {}
        ),
    )
    mail = MailSink(port=base + 1)
    stack = Stack(settings, logs)
    try:
        await stack.start(mail_sink=mail)
    except Exception:
        for log in logs.glob("*.log"):  # noqa: ASYNC240 (only when start-up failed)
            print(f"--- {log.name}\n{log.read_text()[-3000:]}")
        raise
    await counters_built(settings.url_of("availability"))
    try:
        defaults = ServiceSettings()
        signer = TokenSigner(SIGNING_KEY, defaults.jwt_issuer, defaults.jwt_audience, defaults.jwt_ttl_seconds)
        yield RunningSystem(settings, mail, settings.public_url, logs, signer, stack)
    finally:
        await stack.stop()


@pytest.fixture(scope="session")
async def system(servers, tmp_path_factory) -> AsyncIterator[RunningSystem]:
    # Short enough for tests to see holds expire and reconcile run.
    overrides = {"HOLD_SECONDS": "3", "RECONCILE_SECONDS": "4"}
    async with running_system(servers, tmp_path_factory.mktemp("service-logs"), overrides) as running:
        yield running


def loopback_address() -> str:
    """An address of its own on the loopback network (all of 127.0.0.0/8 is this machine): each
    test is a client of its own to the entry's per-address limits, as different people would be."""
    return f"127.{random.randrange(1, 255)}.{random.randrange(0, 256)}.{random.randrange(1, 255)}"


def client_session(address: str | None = None) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address or loopback_address(), 0)))


@pytest.fixture
async def api(system) -> AsyncIterator[ApiClient]:
    async with client_session() as http:
        yield ApiClient(http, system.public_url)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The fault suite last: it restarts the servers every other test shares, and what the system
    repairs afterwards (holds expiring, reconcile) should not run beside the other tests."""
    items.sort(key=lambda item: item.get_closest_marker("fault") is not None and "tests/faults" in str(item.path))
