from aiohttp import web

from booking.owner import CapacityOwner
from booking.service import BookingService

SERVICE = web.AppKey("booking_service", BookingService)
OWNER = web.AppKey("capacity_owner", CapacityOwner)
