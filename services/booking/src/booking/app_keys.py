from aiohttp import web

from booking.service import BookingService

SERVICE = web.AppKey("booking_service", BookingService)
