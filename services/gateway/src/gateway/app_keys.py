from aiohttp import ClientSession, web

from gateway.service import AccountsService

ACCOUNTS = web.AppKey("accounts", AccountsService)
HTTP = web.AppKey("http_client", ClientSession)
