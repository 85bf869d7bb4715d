"""The three servers the system needs (PostgreSQL, Redis, RabbitMQ), made to answer before it starts:
each that does not is started where it is installed, installed from Debian's packages where this
runs as root, or else run from compose's ``servers`` profile where a Docker engine answers. Says
what it did, one line per server. ``make run`` and CI (``.ci/run``) both go through here."""

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from devstack.config import StackSettings
from devstack.secrets import write_compose_env

LOCAL = {"127.0.0.1", "localhost", "::1"}
ROOT = Path(__file__).resolve().parents[4]
COMPOSE_SERVICES = {"PostgreSQL": "dev-postgres", "Redis": "dev-redis", "RabbitMQ": "dev-rabbitmq"}


class ServerMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class Server:
    name: str
    host: str
    port: int
    package: str  # Debian's
    program: str  # on PATH when installed
    start: Callable[["Server"], list[list[str]]]  # the commands that start the installed server
    default_port: int  # the only one its start commands serve (Redis: any)

    @property
    def local(self) -> bool:
        return self.host in LOCAL


def _postgres_start(server: Server) -> list[list[str]]:
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions:
        return []
    cluster = ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main"]
    return [[*cluster, "start"], [*cluster, "reload"]]  # reload: pg_hba.conf as _trust_local_connections left it


def _redis_start(server: Server) -> list[list[str]]:
    # Counters are derived state, rebuilt from PostgreSQL; an evicted key would be a lost counter.
    home = ROOT / "var" / "servers"
    home.mkdir(parents=True, exist_ok=True)
    return [
        ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", str(server.port), "--save", "",
         "--appendonly", "no", "--maxmemory-policy", "noeviction", "--dir", str(home),
         "--logfile", str(home / f"redis-{server.port}.log")],
    ]  # fmt: skip


def _rabbitmq_start(server: Server) -> list[list[str]]:
    # A node that is up with its broker stopped (``rabbitmqctl stop_app``, an interrupted fault
    # test) listens on no AMQP port: its broker is started, not a second node.
    if subprocess.run(["rabbitmqctl", "-q", "status"], capture_output=True, timeout=60).returncode == 0:
        return [["rabbitmqctl", "-q", "start_app"]]
    return [["rabbitmq-server", "-detached"], ["rabbitmqctl", "-q", "await_startup"]]


def servers_of(settings: StackSettings) -> list[Server]:
    def at(url: str, default: int) -> tuple[str, int]:
        parts = urlsplit(url.replace("+asyncpg", ""))
        return parts.hostname or "127.0.0.1", parts.port or default

    return [
        Server("PostgreSQL", *at(settings.database_url, 5432), "postgresql", "pg_ctlcluster", _postgres_start, 5432),
        Server("Redis", *at(settings.redis_url, 6379), "redis-server", "redis-server", _redis_start, 0),
        Server("RabbitMQ", *at(settings.rabbitmq_url, 5672), "rabbitmq-server", "rabbitmq-server", _rabbitmq_start, 5672),
    ]


def answers(server: Server, timeout: float = 1.0) -> bool:
    try:
        socket.create_connection((server.host, server.port), timeout).close()
    except OSError:
        return False
    return True


def until_it_answers(server: Server, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not answers(server):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)


def _docker_engine() -> bool:
    docker = shutil.which("docker")
    return docker is not None and subprocess.run([docker, "info"], capture_output=True, timeout=20).returncode == 0


def ensure(server: Server, say: Callable[[str], None]) -> None:
    """``server`` answering, or ServerMissing saying what was tried."""
    where = f"{server.name} at {server.host}:{server.port}"
    if answers(server):
        if server.local and server.name == "Redis":
            _redis_keeps_every_key(server)
        say(f"{where}: up")
        return
    if not server.local:
        raise ServerMissing(f"{where} does not answer, and it is not on this machine: start it, or point the URL elsewhere")
    serves_port = server.default_port in (0, server.port)
    installed = shutil.which(server.program) is not None or shutil.which(server.program, path="/usr/sbin") is not None
    if not installed and serves_port and os.geteuid() == 0 and shutil.which("apt-get"):
        say(f"{where}: not installed; installing Debian's {server.package}…")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(["apt-get", "install", "-y", "-q", server.package], env=env, capture_output=True).returncode != 0:
            _run(["apt-get", "update", "-q"])
            subprocess.run(["apt-get", "install", "-y", "-q", server.package], env=env, check=True, capture_output=True)
        if server.name == "PostgreSQL":
            _trust_local_connections()
        installed = True
    commands = server.start(server) if installed and serves_port else []
    if commands:
        said = [subprocess.run(c, capture_output=True, text=True, timeout=300) for c in commands]  # e.g. already started
        if until_it_answers(server, 60):
            say(f"{where}: was not running; started ({commands[0][0]})")
            return
        raise ServerMissing(f"{where}: started with {' '.join(commands[0])}, but it never answered: {said[0].stderr.strip()}")
    if _docker_engine() and serves_port:
        service = COMPOSE_SERVICES[server.name]
        if not (ROOT / ".env").exists():  # compose reads the whole file, whose other services need .env's secrets
            write_compose_env(ROOT / ".env")
        _run(["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "--profile", "servers", "up", "-d", "--wait", service])
        say(f"{where}: was not running; started in Docker (compose's {service})")
        return
    raise ServerMissing(
        f"{where} does not answer and could not be started here: install Debian's {server.package} (as root, make run does),"
        " or run `docker compose --profile servers up -d dev-postgres dev-redis dev-rabbitmq` where Docker runs,"
        " or point the URL at one that runs"
    )


def _redis_keeps_every_key(server: Server) -> None:
    """Counters are derived state, rebuilt from PostgreSQL; an evicted key would be a lost counter."""
    if shutil.which("redis-cli") is not None:
        command = ["redis-cli", "-h", server.host, "-p", str(server.port), "config", "set", "maxmemory-policy", "noeviction"]
        subprocess.run(command, capture_output=True, timeout=20)  # a Redis with a password refuses: its own settings rule


def _trust_local_connections() -> None:
    """A PostgreSQL installed here for development answers the machine's own connections without a
    password, as the default DATABASE_URL expects (the cluster's first lines of pg_hba.conf)."""
    for hba in Path("/etc/postgresql").glob("*/main/pg_hba.conf"):
        trusted = "host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n"
        if trusted not in hba.read_text():
            hba.write_text(trusted + hba.read_text())


def ensure_all(settings: StackSettings, say: Callable[[str], None] = print) -> None:
    for server in servers_of(settings):
        ensure(server, say)
