"""The capacity owner's consumer on real RabbitMQ, PostgreSQL and Redis: duplicates and disorder change nothing."""

import asyncio
import json
import random
import uuid
from collections import Counter
from datetime import datetime, time

import aio_pika

from booking.adapters.capacity import CapacityStore
from common.contracts import BlackoutChangeData, DailyBlackoutData, EventData, ShiftStatus
from common.envelope import SHIFTS_EXCHANGE
from common.events import EVENT_CHANGES, SHIFT_CHANGES, Event, EventCreated
from common.messaging import Broker
from tests.factories import event_data, message, professional, shift_data
from tests.integration.booking_parts import booking_parts


def history() -> list[Event]:
    """An event, its blackout and change, and two shifts' lives, each message carrying full state."""
    event = event_data(zone="Europe/Lisbon")
    with_lunch = event.model_copy(
        update={"blackouts": [DailyBlackoutData(id=uuid.uuid4(), start_time=time(12), end_time=time(13))]}
    )
    longer = with_lunch.model_copy(update={"closes_at": time(18)})
    zone, day = event.schedule().zone, event.start_date

    def at(hour: int) -> datetime:
        return datetime.combine(day, time(hour), zone)

    ada, bob = professional("Ada"), professional("Bob")
    a1 = shift_data(event, ada, at(9), at(11), capacity=1)
    a2 = a1.model_copy(update={"end": at(13), "capacity": 2})
    a3 = a2.model_copy(update={"start": at(10), "end": at(14)})
    b1 = shift_data(event, bob, at(9), at(17), capacity=3)
    b2 = b1.model_copy(update={"status": ShiftStatus.CANCELLED})

    return [
        message("event.created", event.id, 1, event),
        message("blackout.created", event.id, 2, BlackoutChangeData(**dict(with_lunch), blackout=with_lunch.blackouts[0])),
        message("event.updated", event.id, 3, longer),
        message("shift.created", a1.id, 1, a1),
        message("shift.updated", a1.id, 2, a2),
        message("shift.updated", a1.id, 3, a3),
        message("shift.created", b1.id, 1, b1),
        message("shift.cancelled", b1.id, 2, b2),
    ]


async def counters(store: CapacityStore, redis, event_id) -> dict:
    keys = store.keys(event_id)
    state = {}
    for name in ("event", "shifts", "alloc", "capacity", "remaining", "professionals"):
        raw = await redis.hgetall(getattr(keys, name))
        state[name] = {field: (json.loads(v) if v.startswith(("{", "[")) else v) for field, v in raw.items()}
    return state


async def test_shuffled_and_duplicated_deliveries_leave_the_same_counters_as_one_in_order(servers, redis, key_prefix):
    messages = history()
    event_id = uuid.UUID(messages[0].aggregate_id)
    async with booking_parts(servers, redis, key_prefix + ":reference") as reference:
        for each in messages:
            await reference.apply(each)
        expected = await counters(reference.store, redis, event_id)
    # Ada ends at 10:00-14:00 with 2 units; Bob's 09:00-17:00 is cancelled and leaves no field behind.
    assert Counter(expected["remaining"].values()) == {"2": 8}

    handled: list[Event] = []
    done = asyncio.Event()
    deliveries = messages * 3
    random.Random(7).shuffle(deliveries)
    deliveries += [m for m in messages if m.sequence == 1]  # and the oldest of each aggregate last of all

    async with booking_parts(servers, redis, key_prefix + ":consumed") as consumed:

        async def handler(event: Event) -> None:
            await consumed.apply(event)
            handled.append(event)
            if len(handled) == len(deliveries):
                done.set()

        broker = Broker(servers.rabbitmq_url, "test-consumer")
        await broker.connect()
        queue = f"test.shift-changes.{uuid.uuid4().hex[:8]}"
        try:
            await broker.subscribe(queue, dict.fromkeys([*EVENT_CHANGES, *SHIFT_CHANGES], handler), prefetch=8)
            for each in deliveries:
                await broker.publish(each.exchange, each.envelope())
            await asyncio.wait_for(done.wait(), 20)
        finally:
            await broker.close()
        assert await counters(consumed.store, redis, event_id) == expected
        audit = await consumed.owner.audit(event_id)
        assert (audit.clean, audit.events) == (True, 1)


async def test_an_unreadable_message_is_dead_lettered_and_the_next_one_is_still_handled(servers):
    good = history()[0]
    handled = asyncio.Event()
    received: list[Event[EventData]] = []

    async def handler(event: Event[EventData]) -> None:
        received.append(event)
        handled.set()

    broker = Broker(servers.rabbitmq_url, "test-poison")
    await broker.connect()
    queue = f"test.poison.{uuid.uuid4().hex[:8]}"
    connection = await aio_pika.connect(servers.rabbitmq_url)
    try:
        await broker.subscribe(queue, {EventCreated: handler})
        channel = await connection.channel()
        exchange = await channel.get_exchange(SHIFTS_EXCHANGE)
        await exchange.publish(aio_pika.Message(b"{not json", message_id="poison-1"), routing_key="event.created")
        await broker.publish(SHIFTS_EXCHANGE, good.envelope())
        await asyncio.wait_for(handled.wait(), 10)
        dead = await channel.get_queue(f"{queue}.dead")
        for _ in range(50):
            if (parked := await dead.get(fail=False)) is not None:
                break
            await asyncio.sleep(0.1)
        assert parked is not None and parked.body == b"{not json" and parked.message_id == "poison-1"
        await parked.ack()
    finally:
        await connection.close()
        await broker.close()
    assert [(e.data.id, e.sequence) for e in received] == [(good.data.id, 1)]
