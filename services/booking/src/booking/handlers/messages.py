"""Shift and event changes in: the capacity owner applies each to the record, the counters and the
bookings under it."""

from booking.owner import CapacityOwner
from common.envelope import IntegrationEvent


async def on_capacity_change(owner: CapacityOwner, event: IntegrationEvent) -> None:
    await owner.apply(event)
