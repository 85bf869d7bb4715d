"""RabbitMQ: one robust connection per process, a confirming publisher, and a consumer helper.

Publishing waits for the broker's confirm and fails on a returned (unroutable) message.
Consuming acks only after the handler succeeded; a failure is requeued until the queue's
delivery limit, then dead-lettered to ``<queue>.dead`` where an operator can see and replay it.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage, AbstractRobustConnection
from pydantic import ValidationError

from common.envelope import IntegrationEvent
from common.logging import correlation_id

log = logging.getLogger(__name__)

DEAD_LETTER_EXCHANGE = "dead-letter"
DELIVERY_LIMIT = 5

EventHandler = Callable[[IntegrationEvent], Awaitable[None]]


class Broker:
    def __init__(self, url: str, connection_name: str, publish_timeout: float = 5.0) -> None:
        self._url = url
        self._connection_name = connection_name
        self._publish_timeout = publish_timeout
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._consumer_channels: list[AbstractChannel] = []  # strong references: aio-pika keeps weak ones

    async def connect(self) -> None:
        self._connection = await aio_pika.connect_robust(
            self._url, heartbeat=15, client_properties={"connection_name": self._connection_name}
        )
        self._publish_channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    @property
    def is_connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def _exchange(self, channel: AbstractChannel, name: str) -> AbstractExchange:
        return await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)

    async def publish(self, exchange_name: str, event: IntegrationEvent) -> None:
        """Publish and wait for the broker's confirm; raises when unconfirmed, returned or timed out."""
        assert self._publish_channel is not None, "connect() first"
        exchange = self._exchanges.get(exchange_name)
        if exchange is None:
            exchange = self._exchanges[exchange_name] = await self._exchange(self._publish_channel, exchange_name)
        message = aio_pika.Message(
            body=event.model_dump_json().encode(),
            content_type="application/json",
            message_id=str(event.event_id),
            type=event.type,
            correlation_id=event.correlation_id,
            timestamp=event.occurred_at,
            app_id=event.producer,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await asyncio.wait_for(exchange.publish(message, routing_key=event.type, mandatory=True), timeout=self._publish_timeout)

    async def subscribe(
        self,
        queue_name: str,
        exchange_name: str,
        binding_keys: list[str],
        handler: EventHandler,
        prefetch: int = 32,
    ) -> None:
        """Consume ``exchange_name`` through a durable quorum queue with a dead-letter queue."""
        assert self._connection is not None, "connect() first"
        channel = await self._connection.channel()
        self._consumer_channels.append(channel)
        await channel.set_qos(prefetch_count=prefetch)
        dead_letters = await channel.declare_exchange(DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
        dead_queue = await channel.declare_queue(f"{queue_name}.dead", durable=True, arguments={"x-queue-type": "quorum"})
        await dead_queue.bind(dead_letters, routing_key=queue_name)
        queue = await channel.declare_queue(
            queue_name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
                "x-dead-letter-routing-key": queue_name,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
                "x-delivery-limit": DELIVERY_LIMIT,
            },
        )
        exchange = await self._exchange(channel, exchange_name)
        for key in binding_keys:
            await queue.bind(exchange, routing_key=key)

        async def on_message(message: AbstractIncomingMessage) -> None:
            try:
                event = IntegrationEvent.model_validate_json(message.body)
            except ValidationError:
                log.error("unreadable message %s on %s: dead-lettered", message.message_id, queue_name)
                await message.reject(requeue=False)
                return
            token = correlation_id.set(event.correlation_id)
            try:
                async with message.process(requeue=True):
                    await handler(event)
            except Exception:
                log.exception("handling %s %s failed; it will be redelivered", event.type, event.event_id)
            finally:
                correlation_id.reset(token)

        await queue.consume(on_message)
