"""Another team's subscriber to booking events: its own durable queue, idempotent by event_id.

    RABBITMQ_URL=amqp://guest:guest@127.0.0.1:5672/ python examples/subscriber.py

Needs only aio-pika. Run it beside `make run`, book something, and watch the events arrive.
"""

import asyncio
import json
import os

import aio_pika

EXCHANGE = "bookings.events"  # topic, durable; routing key = event type
QUEUE = "example-team.bookings"  # yours: name it after your team and purpose
ROUTING_KEYS = ["booking.confirmed", "booking.cancelled", "booking.reassigned", "booking.needs_reschedule"]


async def main() -> None:
    connection = await aio_pika.connect_robust(os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"))
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=16)
    exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    for key in ROUTING_KEYS:
        await queue.bind(exchange, routing_key=key)

    seen: set[str] = set()  # at least once: keep this in your own database, next to the side effect
    newest: dict[str, int] = {}  # per booking, the highest sequence applied

    async with queue.iterator() as messages:
        async for message in messages:
            async with message.process(requeue=True):  # ack after the work; a failure comes again
                event = json.loads(message.body)
                if event["event_id"] in seen or event["sequence"] <= newest.get(event["aggregate_id"], 0):
                    continue  # a redelivery, or older than what we already know
                seen.add(event["event_id"])
                newest[event["aggregate_id"]] = event["sequence"]
                data = event["data"]
                print(f"{event['type']:<26} booking {data['id']} at {data['start']} with {data['professional']['name']}")


if __name__ == "__main__":
    asyncio.run(main())
