from aiohttp import web

from notifier.handlers.messages import Notifier

NOTIFIER = web.AppKey("notifier", Notifier)
