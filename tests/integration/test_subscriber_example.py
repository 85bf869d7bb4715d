"""examples/subscriber.py works as the README says: another team's queue gets the booking events."""

import asyncio
import os
import sys
from pathlib import Path

import aiormq

from common.envelope import BOOKINGS_EXCHANGE
from common.messaging import Broker
from tests.integration.test_notifier import booking, event_of

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "subscriber.py"


async def test_the_example_subscriber_receives_booking_events_once(servers):
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLE), env=os.environ | {"RABBITMQ_URL": servers.rabbitmq_url}, stdout=asyncio.subprocess.PIPE
    )
    broker = Broker(servers.rabbitmq_url, "test-example-publisher")
    await broker.connect()
    try:
        data = booking()
        message = event_of("booking.confirmed", data)
        for _ in range(30):  # until the example has declared and bound its queue
            try:
                await broker.publish(BOOKINGS_EXCHANGE, message)  # the same event again and again: printed once
            except aiormq.exceptions.PublishError:  # unroutable: no queue bound yet (publishing says so)
                await asyncio.sleep(0.3)
                continue
            try:
                line = await asyncio.wait_for(process.stdout.readline(), 0.5)
                break
            except TimeoutError:
                continue
        assert line.decode().startswith("booking.confirmed") and str(data.id) in line.decode()
        await broker.publish(BOOKINGS_EXCHANGE, event_of("booking.cancelled", data, sequence=2))
        nxt = await asyncio.wait_for(process.stdout.readline(), 10)
        assert nxt.decode().startswith("booking.cancelled")  # the repeats of the first were skipped
    finally:
        await broker.close()
        process.terminate()
        await process.wait()
