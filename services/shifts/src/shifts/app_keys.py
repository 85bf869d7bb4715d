from aiohttp import web

from common.outbox import OutboxRelay
from shifts.service import ShiftsService

SERVICE = web.AppKey("shifts_service", ShiftsService)
RELAY = web.AppKey("outbox_relay", OutboxRelay)
