import random
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from common.auth import Identity, Role, TokenCodec
from common.capacity import CapacityStore
from common.settings import ServiceSettings
from devstack.client import ApiClient
from devstack.config import StackSettings
from devstack.mailsink import MailSink
from devstack.stack import Stack

JWT_SECRET = "test-secret-" + uuid.uuid4().hex


def free_port_block(size: int) -> int:
    """The first of ``size`` consecutive ports nobody listens on."""
    for _ in range(200):
        base = random.randint(20000, 60000 - size)
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
    gateway_url: str
    logs: Path
    tokens: TokenCodec

    def token_for(self, role: Role, name: str = "Test User", email: str | None = None, timezone: str = "UTC") -> str:
        """A token as the gateway would issue it, for callers the test does not need to register."""
        return self.tokens.issue(Identity(id=uuid.uuid4(), role=role, name=name, email=email, timezone=timezone))


@pytest.fixture(scope="session")
async def system(servers, tmp_path_factory) -> AsyncIterator[RunningSystem]:
    """The whole system, started the way ``make run`` starts it, against this run's servers."""
    logs = tmp_path_factory.mktemp("service-logs")
    base = free_port_block(6)
    settings = StackSettings(
        database_url=f"{servers.postgres_url}/{servers.run_id}",
        redis_url=servers.redis_url,
        redis_key_prefix=servers.run_id,
        rabbitmq_url=servers.rabbitmq_url,
        jwt_secret=JWT_SECRET,
        gateway_port=base,
        first_service_port=base + 1,
        smtp_port=base + 5,
        admin_email="admin@test.example",
        admin_password="admin-test-password",
        mail_dir=logs / "mail",
    )
    mail = MailSink(port=base + 5)
    stack = Stack(settings, logs)
    try:
        await stack.start(mail_sink=mail)
    except Exception:
        for log in logs.glob("*.log"):
            print(f"--- {log.name}\n{log.read_text()[-3000:]}")
        raise
    yield RunningSystem(settings, mail, settings.url_of("gateway"), logs, TokenCodec(ServiceSettings(jwt_secret=JWT_SECRET)))
    await stack.stop()


@pytest.fixture
async def api(system) -> AsyncIterator[ApiClient]:
    async with aiohttp.ClientSession() as http:
        yield ApiClient(http, system.gateway_url)
