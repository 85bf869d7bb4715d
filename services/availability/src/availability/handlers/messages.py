"""Shift changes in, capacity counters out. Idempotent and order-proof by per-aggregate sequence."""

import asyncio
import logging

from common.capacity import CapacityStore, Rebuilding
from common.contracts import EventData, ShiftData
from common.envelope import IntegrationEvent

log = logging.getLogger(__name__)

REBUILD_WAIT_SECONDS = 120.0


async def apply_shift_change(store: CapacityStore, event: IntegrationEvent) -> None:
    kind = event.type.split(".")[0]
    if kind in ("event", "blackout"):
        apply = store.apply_event
        data = EventData.model_validate(event.data)
    elif kind == "shift":
        apply = store.apply_shift
        data = ShiftData.model_validate(event.data)
    else:
        log.info("ignoring %s", event.type)
        return
    # While the event is rebuilt the change waits: applied to the old counters it would be lost in
    # the swap; applied after, it counts exactly when it is newer than the rebuild's snapshot.
    async with asyncio.timeout(REBUILD_WAIT_SECONDS):
        while True:
            try:
                applied = await apply(event.sequence, data)
                break
            except Rebuilding:
                await asyncio.sleep(0.05)
    if not applied:
        log.info("%s %s #%d already applied or superseded", event.type, event.aggregate_id, event.sequence)
