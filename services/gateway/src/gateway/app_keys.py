from aiohttp import web

from gateway.service import AccountsService

ACCOUNTS = web.AppKey("accounts", AccountsService)
