from collections.abc import AsyncIterator

from aiohttp import web

from common import web as common_web
from common.auth import PROFILES, SignerKeys, TokenSigner
from gateway.adapters.db import OUTBOX
from gateway.adapters.public_api import PublicApi
from gateway.adapters.ratelimit import RateLimiter
from gateway.app_keys import ACCOUNTS, LIMITER, PUBLIC_API, SETTINGS, SIGNER
from gateway.handlers.http import api, jwks
from gateway.handlers.page import add_page
from gateway.service import AccountsService
from gateway.settings import Settings


def create_app(settings: Settings) -> web.Application:
    if settings.jwt_signing_key is None:
        raise SystemExit("JWT_SIGNING_KEY is not set: an Ed25519 private key in PEM (python -m common.auth prints one)")
    signer = TokenSigner(
        settings.jwt_signing_key.get_secret_value(),
        settings.jwt_issuer,
        settings.jwt_audience,
        settings.jwt_ttl_seconds,
        settings.jwt_extra_public_keys,
    )
    app = common_web.service_app(settings, SignerKeys(signer))
    app[SETTINGS] = settings
    app[SIGNER] = signer

    async def accounts(app: web.Application) -> AsyncIterator[None]:
        app[ACCOUNTS] = AccountsService(app[common_web.UNITS_OF_WORK], signer, app[PROFILES], settings.password_hashes_at_once)
        if settings.admin_email and settings.admin_password:
            await app[ACCOUNTS].ensure_admin(
                settings.admin_email, settings.admin_password.get_secret_value(), settings.admin_name
            )
        yield

    async def limits(app: web.Application) -> AsyncIterator[None]:
        app[LIMITER] = RateLimiter(app[common_web.REDIS], settings.redis_key_prefix)
        services = {"shifts": settings.shifts_url, "availability": settings.availability_url, "booking": settings.booking_url}
        app[PUBLIC_API] = PublicApi(app[common_web.HTTP], services, api.public(), api.prefix)
        yield

    app.cleanup_ctx.extend(
        [
            common_web.database(settings.database_url),
            common_web.redis_client(settings, retry_lost_connections=True),  # counts and reads only
            common_web.profiles(settings),  # announces each profile change, and reads them like everyone
            common_web.http_client,
            common_web.broker(settings.rabbitmq_url, settings.service_name),
            common_web.outbox(settings, OUTBOX),
            accounts,
            limits,
        ]
    )
    app.add_routes(api.routes())
    app.router.add_get("/.well-known/jwks.json", jwks)
    add_page(app)
    return app
