from aiohttp import web

from common.auth import TokenSigner
from gateway.adapters.public_api import PublicApi
from gateway.adapters.ratelimit import RateLimiter
from gateway.service import AccountsService
from gateway.settings import Settings

ACCOUNTS = web.AppKey("accounts", AccountsService)
LIMITER = web.AppKey("rate_limiter", RateLimiter)
SETTINGS = web.AppKey("settings", Settings)
PUBLIC_API = web.AppKey("public_api", PublicApi)
SIGNER = web.AppKey("token_signer", TokenSigner)
