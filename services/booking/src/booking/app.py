import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from uuid import UUID

from aiohttp import web

from booking.adapters.capacity import CapacityStore
from booking.adapters.repository import units_of_work
from booking.app_keys import CALENDAR_FEEDS, OWNER, SERVICE, WAITLIST
from booking.calendar_feed import CalendarFeeds
from booking.handlers.http import api
from booking.handlers.messages import subscriptions
from booking.owner import CapacityOwner
from booking.service import BookingService
from booking.settings import Settings
from booking.waitlist import Offers, WaitlistService
from common import web as common_web


def create_app(settings: Settings) -> web.Application:
    app = common_web.service_app(settings)

    async def wire(app: web.Application) -> AsyncIterator[None]:
        store = CapacityStore(app[common_web.REDIS], settings.redis_key_prefix)
        units = units_of_work(app[common_web.PG_POOL], app[common_web.RELAY].wake)
        offers = Offers(units, store)
        app[SERVICE] = BookingService(
            units, store, settings.hold_seconds, settings.deadline_seconds, settings.bookings_per_minute, offers.make
        )
        app[WAITLIST] = WaitlistService(units, store, app[SERVICE], offers, settings.claim_link_secret.get_secret_value())
        app[OWNER] = CapacityOwner(units, store, offers)
        app[CALENDAR_FEEDS] = CalendarFeeds(units, settings.public_url, settings.mail_domain)
        yield

    app.cleanup_ctx.extend(
        [
            common_web.pg_pool(settings.database_url),
            common_web.redis_client(settings, retry_lost_connections=True),  # every script is idempotent
            common_web.profiles(settings),  # a booking records its client as they are now
            common_web.broker(settings.rabbitmq_url, settings.service_name),
            common_web.outbox(settings),
            wire,
            common_web.consumer(settings, lambda app: subscriptions(app[OWNER])),
            # The counters' keeping (rebuild, repair, hold expiry): every instance runs it, each duty
            # is done by one at a time.
            common_web.background(
                "keep-counters", lambda app: app[OWNER].watch(settings.rebuild_check_seconds, settings.reconcile_seconds)
            ),
        ]
    )
    common_web.add_endpoints(app, "booking", api)
    return app


@asynccontextmanager
async def owner_alone(settings: Settings) -> AsyncIterator[CapacityOwner]:
    """The capacity owner for an operator's command, beside the running service (whose relay
    publishes what a command wrote)."""
    from common.db import create_pool

    pool = await create_pool(settings.database_url, size=2)
    redis = common_web.redis_from(settings, retry_lost_connections=True)
    try:
        units, store = units_of_work(pool, wake_relay=lambda: None), CapacityStore(redis, settings.redis_key_prefix)
        yield CapacityOwner(units, store, Offers(units, store))
    finally:
        await redis.aclose()
        await pool.close()


def _event_and_flags(args: list[str]) -> tuple[UUID | None, set[str]]:
    events = [UUID(a) for a in args if not a.startswith("--")]
    return (events[0] if events else None), {a for a in args if a.startswith("--")}


def _print(report) -> None:
    """The command's report: its last line of output, after the log's."""
    import orjson

    print(orjson.dumps(report if isinstance(report, dict) else asdict(report)).decode())


async def audit_command(settings: Settings, args: list[str]) -> None:
    """``python -m booking audit [--repair] [EVENT_ID]``: from PostgreSQL alone, every confirmed
    booking within its professional's active capacity; ``--repair`` moves or flags what is not
    (it needs Redis too). Exits 1 when the record was not clean."""
    event_id, flags = _event_and_flags(args)
    async with owner_alone(settings) as owner:
        report = await (owner.settle(event_id) if "--repair" in flags else owner.audit(event_id))
    _print(report.as_dict())
    if not report.clean:
        raise SystemExit(1)


async def rebuild_command(settings: Settings, args: list[str]) -> None:
    """``python -m booking rebuild [EVENT_ID]``: the counters from the record, now (every event:
    waits while a running instance is rebuilding everything)."""
    event_id, _ = _event_and_flags(args)
    async with owner_alone(settings) as owner:
        if event_id is not None:
            _print(await owner.rebuild(event_id))
            return
        for _ in range(600):
            if (report := await owner.rebuild_everything()) is not None:
                _print(report)
                return
            await asyncio.sleep(0.2)
        raise SystemExit("another instance was rebuilding everything for two minutes; try again")


async def reconcile_command(settings: Settings, args: list[str]) -> None:
    """``python -m booking reconcile [EVENT_ID]``: compare every counter with the record, repair, report."""
    event_id, _ = _event_and_flags(args)
    async with owner_alone(settings) as owner:
        _print(await owner.reconcile(event_id))
