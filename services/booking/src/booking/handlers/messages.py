"""Shift changes in: bookings a shift no longer covers move to another professional or are flagged."""

from booking.service import BookingService
from common.contracts import ShiftData
from common.envelope import IntegrationEvent


async def on_shift_change(service: BookingService, event: IntegrationEvent) -> None:
    if event.type.startswith("shift."):
        await service.on_shift_changed(event.sequence, ShiftData.model_validate(event.data))
