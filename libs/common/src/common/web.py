"""The skeleton every service's ``create_app`` builds on: middlewares, health, resources, running."""

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import uvloop
from aiohttp import ClientSession, TCPConnector, web
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from common.auth import PROFILES, TOKEN_VERIFIER, PublishedKeys, TokenVerifier, UserKeys, identity_middleware
from common.db import create_engine, create_pool, session_factory
from common.endpoints import Endpoints
from common.errors import Problem
from common.logging import configure_logging, correlation_id, new_correlation_id
from common.messaging import RETRY_DELAYS, Broker, Subscriptions
from common.metrics import measure_middleware, serve_metrics
from common.openapi import document
from common.outbox import ConnectionOutboxRows, Outbox, OutboxRelay, SessionOutboxRows
from common.problems import header_value, problem_middleware, problem_response
from common.profiles import Profiles
from common.settings import ServiceSettings
from common.tracing import configure_tracing
from common.unit_of_work import UnitOfWork, unit_of_work

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[Any]]

READINESS = web.AppKey("readiness", list[ReadinessCheck])
REPORTED = web.AppKey("reported", list[tuple[str, Callable[[], bool]]])  # shown by /readyz, not required
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker)
REDIS = web.AppKey("redis", Redis)
BROKER = web.AppKey("broker", Broker)
HTTP = web.AppKey("http_client", ClientSession)
PG_POOL = web.AppKey("pg_pool", asyncpg.Pool)
OUTBOX = web.AppKey("outbox", Outbox)
RELAY = web.AppKey("outbox_relay", OutboxRelay)
UNITS_OF_WORK = web.AppKey("units_of_work", Callable[[], UnitOfWork])

MAX_BODY_BYTES = 64 * 1024
REDIS_CONNECTIONS = 64
CORRELATION_HEADER = "X-Correlation-ID"


@web.middleware
async def correlation_middleware(request: web.Request, handler):
    try:
        value = header_value(request, CORRELATION_HEADER, 1000) or new_correlation_id()
    except Problem as problem:  # outside the problem middleware: it is logged with this id
        return problem_response(problem, request.path)
    token = correlation_id.set(value[:64])
    try:
        response = await handler(request)
        response.headers[CORRELATION_HEADER] = value[:64]
        return response
    finally:
        correlation_id.reset(token)


async def _healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    failures = {}
    for check in request.app[READINESS]:
        try:
            await asyncio.wait_for(check(), timeout=2)
        except Exception as exc:  # a readiness probe reports, it does not raise
            name = getattr(check, "__qualname__", "check")
            failures[name] = "down"  # what failed, never why: the reason (addresses, names) goes to the log
            log.warning("readiness check %s failed: %r", name, exc)
    reported = {name: "up" if is_up() else "down" for name, is_up in request.app[REPORTED]}
    if failures:
        return json_response({"status": "unavailable", "failures": failures, **reported}, status=503)
    return json_response({"status": "ready", **reported})


def json_response(data: Any, status: int = 200) -> web.Response:
    """Every JSON answer of ours; orjson is several times faster than json on our hot paths."""
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


@dataclass(frozen=True)
class Rendered:
    """An answer rendered once, with a strong ``ETag``: a hash of the bytes themselves, so it
    changes exactly when the answer does."""

    body: bytes
    etag: str
    content_type: str = "application/json"


def rendered(body: bytes, content_type: str) -> Rendered:
    return Rendered(body, f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"', content_type)


def render_json(data: Any) -> Rendered:
    return rendered(orjson.dumps(data), "application/json")


def conditional(answer: Rendered, if_none_match: str | None) -> web.Response:
    """The answer, or 304 with no body when the client already holds it."""
    headers = {"ETag": answer.etag, "Cache-Control": "no-cache"}  # may be kept, but asked again every time
    held = {tag.strip().removeprefix("W/") for tag in (if_none_match or "").split(",")}
    if answer.etag in held or "*" in held:
        return web.Response(status=304, headers=headers)
    return web.Response(body=answer.body, content_type=answer.content_type, headers=headers)


def page(items: list[dict], limit: int) -> dict:
    """A list answer: ``{items, next_cursor}``; the cursor is the last id when the page is full."""
    return {"items": items, "next_cursor": str(items[-1]["id"]) if len(items) == limit else None}


def service_app(settings: ServiceSettings, user_keys: UserKeys | None = None) -> web.Application:
    """The skeleton every service shares. People's tokens are verified with ``user_keys`` (the
    gateway's own), else with the keys the gateway publishes at ``JWKS_URL``."""
    measured = [measure_middleware] if settings.metrics_enabled else []
    app = web.Application(
        middlewares=[correlation_middleware, *measured, problem_middleware, identity_middleware],
        client_max_size=MAX_BODY_BYTES,
    )
    if user_keys is None:
        published = user_keys = PublishedKeys(settings.jwks_url)
        app.on_cleanup.append(lambda app: published.close())
    app[TOKEN_VERIFIER] = TokenVerifier(user_keys, settings.jwt_issuer, settings.jwt_audience)
    app[READINESS] = []
    app[REPORTED] = []
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    if settings.metrics_enabled:
        app.router.add_get("/metrics", serve_metrics)
    return app


def add_endpoints(app: web.Application, title: str, endpoints: Endpoints) -> None:
    """Serve the service's endpoints, and their OpenAPI document at /openapi.json (built once)."""
    app.add_routes(endpoints.routes())
    body = orjson.dumps(document(title, endpoints.public()))

    async def serve_document(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app.router.add_get("/openapi.json", serve_document)


def database(url: str):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        engine = create_engine(url)
        app[ENGINE] = engine
        app[SESSIONS] = session_factory(engine)

        async def database_ready() -> None:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        app[READINESS].append(database_ready)
        yield
        await engine.dispose()

    return ctx


def pg_pool(url: str):
    """A plain asyncpg pool (``app[PG_POOL]``), for a service on asyncpg instead of SQLAlchemy."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pool = app[PG_POOL] = await create_pool(url)

        async def database_ready() -> None:
            await pool.fetchval("SELECT 1")

        app[READINESS].append(database_ready)
        yield
        await pool.close()

    return ctx


def redis_from(settings: ServiceSettings, retry_lost_connections: bool = False) -> Redis:
    """The service's Redis: one server, or a Redis Cluster (``REDIS_CLUSTER``), each through a
    bounded pool that makes a burst wait for a connection (redis-py's default pool refuses the
    request past its size: "Too many connections", a 500 seen under 100 clients).
    ``retry_lost_connections``: a command whose connection turns out lost (Redis restarted) is
    sent again on a new one; only for a service whose commands may run twice harmlessly (reads,
    counts, and the capacity scripts, each idempotent: a take by the booking's id). Elsewhere the
    loss is a 503 and the client's retry does it."""
    retry = {"retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 2), "retry_on_error": [RedisConnectionError]}
    if settings.redis_cluster:
        return RedisCluster.from_url(
            settings.redis_url,
            max_connections=REDIS_CONNECTIONS,
            decode_responses=True,
            health_check_interval=10,
            **(retry if retry_lost_connections else {}),
        )
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=REDIS_CONNECTIONS,
        timeout=5,
        decode_responses=True,
        health_check_interval=10,
        **(retry if retry_lost_connections else {}),
    )
    return Redis.from_pool(pool)  # owns the pool: aclose() closes it


def redis_client(settings: ServiceSettings, retry_lost_connections: bool = False):
    """``app[REDIS]`` (``redis_from``), as long as the app."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        client = redis_from(settings, retry_lost_connections)
        app[REDIS] = client
        app[READINESS].append(client.ping)
        yield
        await client.aclose()

    return ctx


async def http_client(app: web.Application) -> AsyncIterator[None]:
    """One pooled HTTP client for calls to the other services."""
    app[HTTP] = ClientSession(connector=TCPConnector(limit=200), auto_decompress=False)
    yield
    await app[HTTP].close()


def broker(url: str, connection_name: str):
    """RabbitMQ. Not a readiness condition: with the broker down a service still serves what it can
    (bookings go on, their events wait in the outbox); /readyz reports it."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        instance = Broker(url, connection_name)
        app[BROKER] = instance
        app[REPORTED].append(("rabbitmq", lambda: instance.is_connected))
        try:  # the usual case: connected (and, by the next contexts, subscribed) before serving
            await asyncio.wait_for(instance.connect(), timeout=5)
        except Exception as exc:
            log.warning("starting without RabbitMQ (%r); connecting in the background", exc)
        async with _background_task("rabbitmq-connect", instance.keep_connecting):
            yield
        await instance.close()

    return ctx


async def _supervise(name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run until done; a crash is logged and the run restarted."""
    while True:
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task %s crashed; restarting", name)
            await asyncio.sleep(1)


@contextlib.asynccontextmanager
async def _background_task(name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> AsyncIterator[None]:
    task = asyncio.create_task(_supervise(name, run), name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _measured(
    settings: ServiceSettings, name: str, measure: Callable[[], Coroutine[Any, Any, None]]
) -> contextlib.AbstractAsyncContextManager[None]:
    """A gauge's refreshing task, when metrics are on."""
    return _background_task(name, measure) if settings.metrics_enabled else contextlib.nullcontext()


def profiles(settings: ServiceSettings):
    """People's current profiles for the identity middleware (``common.profiles``), following the
    gateway's announcements of changes; needs the Redis context before it."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[PROFILES] = kept = Profiles(app[REDIS], settings.redis_key_prefix)
        async with _background_task("follow-profiles", kept.follow):
            yield

    return ctx


def background(name: str, run: Callable[[web.Application], Coroutine[Any, Any, None]]):
    """A task that lives as long as the app; a crash is logged and the task restarted."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with _background_task(name, lambda: run(app)):
            yield

    return ctx


def consumer(
    settings: ServiceSettings,
    subscriptions_of: Callable[[web.Application], Subscriptions],
    retry_delays: tuple[float, ...] = RETRY_DELAYS,
):
    """The service's subscriptions on its queue (``settings.queue_name``), as long as the app; needs
    the broker and whatever its handlers use before it. Stopping, it takes no more messages and
    lets those being handled finish (``drain_seconds`` at most) before anything they use closes."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        instance = app[BROKER]
        await instance.subscribe(settings.queue_name, subscriptions_of(app), settings.consumer_prefetch, retry_delays)
        async with _measured(settings, "queue-depth", lambda: instance.measure_queue(settings.queue_name)):
            yield
        await instance.stop_consuming(settings.drain_seconds)

    return ctx


def outbox(settings: ServiceSettings, table: Table | None = None):
    """The service's outbox relay (``app[RELAY]``), running as long as the app; needs the database
    (or pool) and broker contexts before it. With ``table``, a service on SQLAlchemy: its outbox
    (``app[OUTBOX]``) and units of work (``app[UNITS_OF_WORK]``) too. Without, a service on plain
    asyncpg (booking), whose units of work are its own. Stopping, it publishes what is pending
    (``drain_seconds`` at most): the last requests' events leave with the instance."""
    poll_seconds = settings.outbox_poll_seconds

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if table is not None:
            app[OUTBOX] = Outbox(table)
            app[RELAY] = OutboxRelay(SessionOutboxRows(app[ENGINE]), app[BROKER], poll_seconds)
            app[UNITS_OF_WORK] = unit_of_work(app[SESSIONS], app[OUTBOX], app[RELAY].wake)
        else:
            app[RELAY] = OutboxRelay(ConnectionOutboxRows(app[PG_POOL]), app[BROKER], poll_seconds)
        relay = app[RELAY]
        async with _background_task("outbox-relay", relay.run), _measured(settings, "outbox-backlog", relay.measure_backlog):
            yield
        await app[RELAY].flush(settings.drain_seconds)

    return ctx


def serve(app: web.Application, settings: ServiceSettings) -> None:
    log.info("%s listening on %s:%s", settings.service_name, settings.http_host, settings.http_port)
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    # SIGTERM: stop listening, let in-flight requests finish (drain_seconds at most), then the
    # cleanup contexts in reverse: consumers drained, the outbox flushed, connections closed.
    web.run_app(
        app,
        host=settings.http_host,
        port=settings.http_port,
        print=None,
        access_log=None,
        shutdown_timeout=settings.drain_seconds,
    )


def dead_letter_commands(settings: ServiceSettings, queue_name: str) -> dict[str, Callable[[list[str]], Coroutine]]:
    """``dead-letters`` (list what is parked in ``<queue>.dead``) and ``replay-dead-letters``."""

    async def with_broker(action: Callable[[Broker], Awaitable[Any]]) -> None:
        instance = Broker(settings.rabbitmq_url, f"{settings.service_name}-operator")
        await instance.connect()
        try:
            print(orjson.dumps(await action(instance), option=orjson.OPT_INDENT_2).decode())
        finally:
            await instance.close()

    async def list_them(args: list[str]) -> None:
        await with_broker(lambda b: b.dead_letters(queue_name))

    async def replay_them(args: list[str]) -> None:
        await with_broker(lambda b: _replayed(b, queue_name))

    return {"dead-letters": list_them, "replay-dead-letters": replay_them}


async def _replayed(instance: Broker, queue_name: str) -> dict:
    return {"queue": queue_name, "replayed": await instance.replay_dead_letters(queue_name)}


def run_service(
    settings: ServiceSettings,
    create_app: Callable[[Any], web.Application],
    argv: list[str],
    package_dir: Path | None = None,
    database_url: str | None = None,
    commands: dict[str, Callable[[list[str]], Coroutine[Any, Any, None]]] | None = None,
) -> None:
    """The ``__main__`` of every service: ``serve`` (default), ``migrate``, ``revision MESSAGE``,
    and the service's own ``commands`` (each given the arguments after its name)."""
    configure_logging(settings.service_name, settings.log_level)
    command = argv[1] if len(argv) > 1 else "serve"
    if command == "serve":
        configure_tracing(settings)
    # A migration needs its database only; everything else, credentials of its own.
    if command not in ("migrate", "revision") and settings.environment != "development" and (refusals := settings.refusals()):
        raise SystemExit(
            f"{settings.service_name} will not start with built-in or missing credentials outside development "
            "(ENVIRONMENT=development is for make run and the tests):\n  - " + "\n  - ".join(refusals)
        )
    if commands and command in commands:
        asyncio.run(commands[command](argv[2:]))
    elif command == "serve":
        serve(create_app(settings), settings)
    elif command == "migrate" and package_dir and database_url:
        from common.migrations import migrate  # alembic costs a second of start-up; only migrate needs it

        asyncio.run(migrate(package_dir, database_url))
    elif command == "revision" and package_dir and database_url and len(argv) == 3:
        from common.migrations import make_revision

        asyncio.run(make_revision(package_dir, database_url, argv[2]))
    elif command != "migrate":
        extra = "".join(f"|{name}" for name in commands or {})
        raise SystemExit(f"usage: python -m {settings.service_name} [serve|migrate|revision MESSAGE{extra}]")
