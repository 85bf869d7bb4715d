from aiohttp import web

from notifier.service import Notifier

NOTIFIER = web.AppKey("notifier", Notifier)
