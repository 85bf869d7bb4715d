"""Shift changes in, capacity counters out. Idempotent and order-proof by per-aggregate sequence."""

import logging

from common.capacity import CapacityStore
from common.contracts import EventData, ShiftData
from common.envelope import IntegrationEvent

log = logging.getLogger(__name__)


async def apply_shift_change(store: CapacityStore, event: IntegrationEvent) -> None:
    kind = event.type.split(".")[0]
    if kind in ("event", "blackout"):
        applied = await store.apply_event(event.sequence, EventData.model_validate(event.data))
    elif kind == "shift":
        applied = await store.apply_shift(event.sequence, ShiftData.model_validate(event.data))
    else:
        log.info("ignoring %s", event.type)
        return
    if not applied:
        log.info("%s %s #%d already applied or superseded", event.type, event.aggregate_id, event.sequence)
