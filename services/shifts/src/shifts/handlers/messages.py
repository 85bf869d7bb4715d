"""Messages in: the gateway's announcements of professionals, kept in the shifts service's directory."""

from common.events import PROFESSIONAL_CHANGES
from common.messaging import Subscriptions
from shifts.service import ShiftsService


def subscriptions(shifts: ShiftsService) -> Subscriptions:
    return dict.fromkeys(PROFESSIONAL_CHANGES, shifts.record_professional)
