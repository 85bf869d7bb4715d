from aiohttp import web

from booking.service import BookingService
from common.outbox import OutboxRelay

SERVICE = web.AppKey("booking_service", BookingService)
RELAY = web.AppKey("outbox_relay", OutboxRelay)
