"""Messages in: every booking event, mailed to its client and professional; every waitlist
event, mailed to its client."""

from common.events import BOOKING_EVENTS, WAITLIST_EVENTS
from common.messaging import Subscriptions
from notifier.service import Notifier


def subscriptions(notifier: Notifier) -> Subscriptions:
    return dict.fromkeys(BOOKING_EVENTS, notifier.handle) | dict.fromkeys(WAITLIST_EVENTS, notifier.handle_waitlist)
