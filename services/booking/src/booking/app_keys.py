from aiohttp import web

from booking.calendar_feed import CalendarFeeds
from booking.owner import CapacityOwner
from booking.service import BookingService
from booking.waitlist import WaitlistService

SERVICE = web.AppKey("booking_service", BookingService)
OWNER = web.AppKey("capacity_owner", CapacityOwner)
WAITLIST = web.AppKey("waitlist_service", WaitlistService)
CALENDAR_FEEDS = web.AppKey("calendar_feeds", CalendarFeeds)
