import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from uuid import UUID

from aiohttp import ClientSession, web
from redis.asyncio import Redis

from availability.adapters.record import SystemOfRecord
from availability.app_keys import AVAILABILITY, REBUILDER
from availability.handlers.http import api
from availability.service import Availability, Rebuilder
from availability.settings import Settings
from common import web as common_web
from common.auth import ServiceTokens
from common.capacity import CapacityStore


def create_app(settings: Settings) -> web.Application:
    app = common_web.service_app(settings)

    async def capacity(app: web.Application) -> AsyncIterator[None]:
        store, app[REBUILDER] = build_rebuilder(settings, app[common_web.REDIS], app[common_web.HTTP])
        app[AVAILABILITY] = Availability(store, settings.answer_max_age_seconds)
        yield

    app.cleanup_ctx.extend(
        [
            common_web.redis_client(settings.redis_url, retry_lost_connections=True),  # reads, and rebuild steps safe to repeat
            common_web.profiles(settings),  # a signed-in reader's own timezone, as it is now
            common_web.http_client,
            capacity,
            common_web.background("follow-changes", lambda app: app[AVAILABILITY].follow_changes()),
            common_web.background(
                "rebuild-watch", lambda app: app[REBUILDER].watch(settings.rebuild_check_seconds, settings.reconcile_seconds)
            ),
        ]
    )
    common_web.add_endpoints(app, "availability", api)
    return app


def build_rebuilder(settings: Settings, redis: Redis, http: ClientSession) -> tuple[CapacityStore, Rebuilder]:
    store = CapacityStore(redis, settings.redis_key_prefix)
    if settings.service_signing_key is None:
        raise SystemExit(
            "SERVICE_SIGNING_KEY is not set: availability's own Ed25519 private key (PEM), trusted by the booking service"
        )
    tokens = ServiceTokens("availability", settings.service_signing_key.get_secret_value(), settings.jwt_audience)
    record = SystemOfRecord(http, settings.booking_url, tokens, settings.record_timeout_seconds)
    return store, Rebuilder(store, record, settings.rebuild_settle_seconds, settings.rebuild_flag_seconds)


async def reconcile_command(settings: Settings, args: list[str]) -> None:
    """``python -m availability reconcile [EVENT_ID]``: compare every counter with the record, repair, report."""
    async with Redis.from_url(settings.redis_url, decode_responses=True) as redis, ClientSession() as http:
        _, rebuilder = build_rebuilder(settings, redis, http)
        print(json.dumps(asdict(await rebuilder.reconcile(UUID(args[0]) if args else None))))


async def rebuild_command(settings: Settings, args: list[str]) -> None:
    """``python -m availability rebuild [EVENT_ID]``: counters from the system of record, now."""
    async with Redis.from_url(settings.redis_url, decode_responses=True) as redis, ClientSession() as http:
        _, rebuilder = build_rebuilder(settings, redis, http)
        if args:
            report = await rebuilder.rebuild(UUID(args[0]))
        else:
            report = await rebuilder.rebuild_everything(wait_seconds=120)
            if report is None:
                raise SystemExit("another rebuild held the lock for two minutes; try again")
        print(json.dumps(asdict(report)))
