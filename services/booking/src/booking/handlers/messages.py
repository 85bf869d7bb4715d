"""Messages in: shift and event changes, each applied by the capacity owner to the record, the
counters and the bookings under it."""

from booking.owner import CapacityOwner
from common.events import EVENT_CHANGES, SHIFT_CHANGES
from common.messaging import Subscriptions


def subscriptions(owner: CapacityOwner) -> Subscriptions:
    """Every change that can take capacity away: the whole event (hours, blackouts), or a shift."""
    return {kind: owner.apply_event_change for kind in EVENT_CHANGES} | {kind: owner.apply_shift_change for kind in SHIFT_CHANGES}
