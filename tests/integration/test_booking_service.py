"""The booking service's use cases called directly, on real PostgreSQL and Redis, where HTTP
cannot make requests collide reliably."""

import asyncio
import uuid
from datetime import datetime, time

from booking.adapters.db import OUTBOX
from booking.api import BookingIn
from booking.service import BookingService
from common.auth import Identity, Role
from common.capacity import CapacityStore
from common.db import create_engine, session_factory
from common.envelope import BOOKINGS_EXCHANGE
from common.outbox import Outbox
from tests.factories import event_data, professional, shift_data


async def test_racing_requests_with_one_key_collide_in_postgresql_and_leave_one_booking(system, servers, redis, key_prefix):
    store = CapacityStore(redis, key_prefix)
    event = event_data()
    start = datetime.combine(event.start_date, time(9), event.schedule().zone)
    pro = professional("Ada")
    await store.apply_event(1, event)
    await store.apply_shift(1, shift_data(event, pro, start, start.replace(hour=10), capacity=50))
    engine = create_engine(servers.database_url("booking"))  # the running system's, migrated
    service = BookingService(session_factory(engine), store, Outbox(OUTBOX, BOOKINGS_EXCHANGE, "test"), lambda: None, 30)
    client = Identity(id=uuid.uuid4(), role=Role.CLIENT, name="Retrier")
    try:
        results = await asyncio.gather(
            *(service.book(client, BookingIn(event_id=event.id, start=start), "same-key") for _ in range(20))
        )
    finally:
        await engine.dispose()
    assert len({booking.id for booking, _ in results}) == 1
    assert [created for _, created in results].count(True) == 1
    known = await store.event(event.id)
    nine = known.schedule.slot_starting_at(start)
    assert await store.professional_usage(event.id, nine) == {str(pro.id): 1}  # every loser gave its unit back
    assert await store.holds(event.id) == []
