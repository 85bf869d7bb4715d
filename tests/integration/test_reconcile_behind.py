"""Reconciling while the capacity owner is between applying a shift change to Redis and committing
it: the counters are ahead of the record for a moment, and the reconcile must not undo the change.

The record is a stand-in here (the booking service's snapshot as it reads before and after the
owner's commit), because the moment between the two cannot be held open through the real service.
"""

from availability.adapters.record import EventRecord
from availability.service import Rebuilder
from common.capacity import CapacityStore
from tests.factories import event_data, professional, shift_data


class RecordBetweenTheTwo:
    """The booking service's snapshot of one event, with no bookings; ``shifts`` as committed so far."""

    def __init__(self, event, shifts) -> None:
        self.event, self.shifts = event, shifts

    async def events(self, event_id=None) -> list[EventRecord]:
        return [EventRecord(1, self.event, list(self.shifts))]

    async def confirmed(self, event_id=None) -> dict:
        return {}

    async def audit(self, event_id=None) -> dict:
        return {"clean": True}


async def test_a_change_redis_has_and_the_record_has_not_yet_committed_is_not_undone(store: CapacityStore):
    data = event_data()
    await store.apply_event(1, data)
    ada = professional("Ada")
    first = data.schedule().slots_on_local_day(data.start_date, data.schedule().zone)[0]
    shift = shift_data(data, ada, first.start, first.end, capacity=1)
    raised = shift.model_copy(update={"capacity": 3})
    await store.apply_shift(1, shift)
    await store.apply_shift(2, raised)  # the owner has applied it; its transaction has not committed
    record = RecordBetweenTheTwo(data, [(1, shift)])
    rebuilder = Rebuilder(store, record, settle_seconds=0.05, flag_seconds=10)

    report = await rebuilder.reconcile(data.id)
    assert report.repaired == {}  # the drift it saw is the change in flight
    assert (await store.day_counts(data.id, data.start_date)).remaining[0] == 3
    assert (await rebuilder.rebuild(data.id)).behind == [str(data.id)]

    record.shifts = [(2, raised)]  # the owner's commit
    assert (await rebuilder.reconcile(data.id)).repaired == {}
    assert (await rebuilder.rebuild(data.id)).events == 1
    assert (await store.day_counts(data.id, data.start_date)).remaining[0] == 3
