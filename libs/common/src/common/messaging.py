"""RabbitMQ: one robust connection per process, a confirming publisher, and a consumer helper.

Publishing waits for the broker's confirm and fails on a returned (unroutable) message.
Consuming acks only after the handler succeeded. A failure is retried later, not by sleeping in
the consumer: the message is re-published to ``<queue>.retry.<ms>``, a queue whose messages
expire after that delay and are dead-lettered back to ``<queue>``; after the last delay it is
parked in ``<queue>.dead``, where ``dead_letters``/``replay_dead_letters`` let an operator see
and replay it. An unreadable message is parked at once.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage, AbstractRobustConnection
from pydantic import ValidationError

from common.envelope import IntegrationEvent
from common.events import Event
from common.logging import correlation_id
from common.metrics import (
    DEAD_LETTERS,
    MESSAGE_HANDLING_SECONDS,
    MESSAGE_LAG_SECONDS,
    MESSAGES_DELIVERED,
    MESSAGES_HANDLED,
    MESSAGES_REDELIVERED,
    QUEUE_MESSAGES,
    REFRESH_SECONDS,
)
from common.unavailable import is_unavailable

log = logging.getLogger(__name__)

DEAD_LETTER_EXCHANGE = "dead-letter"
DELIVERY_LIMIT = 5  # deliveries without an ack (a consumer crashing on it) before RabbitMQ parks it
RETRY_DELAYS = (1.0, 5.0, 30.0)  # seconds before the 2nd, 3rd and 4th attempt
# aio-pika waits 5 s between attempts by default: after a broker restart every outbox then waits
# that long before anything goes out, and a change announced meanwhile arrives seconds late.
RECONNECT_SECONDS = 1.0
UNAVAILABLE_HEADER = "x-unavailable-attempts"  # tries while a server it needs was down: never parks it
ATTEMPT_HEADER = "x-attempt"

UNREADABLE, NOT_OURS = "unreadable", "other"  # the event type label of a message we cannot or need not read
EventHandler = Callable[[Event], Awaitable[None]]
Subscriptions = Mapping[type[Event], EventHandler]  # what a consumer handles, and how: its bindings follow


class Broker:
    def __init__(self, url: str, connection_name: str, publish_timeout: float = 5.0) -> None:
        self._url = url
        self._connection_name = connection_name
        self._publish_timeout = publish_timeout
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._consumer_channels: list[AbstractChannel] = []  # strong references: aio-pika keeps weak ones
        self._pending: list[tuple] = []  # subscriptions asked for before the first connection
        self._on_reconnect: list[Callable[[], None]] = []
        self._consumers: list[tuple[aio_pika.abc.AbstractQueue, str]] = []  # (queue, consumer tag)
        self._handling = 0  # messages being handled now
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False

    async def connect(self) -> None:
        connection = await aio_pika.connect_robust(
            self._url,
            heartbeat=15,
            reconnect_interval=RECONNECT_SECONDS,
            client_properties={"connection_name": self._connection_name},
        )
        connection.reconnect_callbacks.add(self._reconnected)
        self._publish_channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        self._connection = connection
        pending, self._pending = self._pending, []
        for subscription in pending:
            await self._subscribe_now(*subscription)

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """Called each time the connection and its channels are restored (e.g. an outbox relay's
        wake-up: what failed during the outage goes out now, not after its backoff)."""
        self._on_reconnect.append(callback)

    def _reconnected(self, *_: object) -> None:
        log.info("reconnected to RabbitMQ")
        for callback in self._on_reconnect:
            callback()

    async def keep_connecting(self) -> None:
        """Until the first connection succeeds (after it, connect_robust recovers by itself):
        a service starts, and serves what it can, while RabbitMQ is down."""
        delay = 1.0
        while self._connection is None:
            try:
                await self.connect()
                log.info("connected to RabbitMQ")
                self._reconnected()
            except Exception as exc:
                log.warning("RabbitMQ not reachable (%r); trying again in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def stop_consuming(self, timeout: float) -> bool:
        """Take no more messages (each consumer cancelled, so RabbitMQ delivers nothing more here),
        and wait up to ``timeout`` for those being handled to finish and be acked. True when none
        was left unfinished; what is delivered and not handled goes back to the queue with the
        channel, for another instance."""
        self._stopping = True
        self._pending.clear()
        for queue, tag in self._consumers:
            try:
                await asyncio.wait_for(queue.cancel(tag), timeout)
            except Exception as exc:  # the connection is already gone: nothing more comes anyway
                log.warning("could not cancel the consumer of %s (%r)", queue.name, exc)
        self._consumers.clear()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            log.warning("%d messages still being handled after %.0f s; they will be delivered again", self._handling, timeout)
            return False

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
        if self._publish_channel is None:
            raise ConnectionError("not connected to RabbitMQ yet")
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

    async def _republish(self, exchange_name: str, routing_key: str, message: AbstractIncomingMessage, headers: dict) -> None:
        """Publish a copy of a received message (confirmed), with extra headers."""
        assert self._publish_channel is not None
        exchange = (
            self._publish_channel.default_exchange
            if exchange_name == ""
            else await self._publish_channel.get_exchange(exchange_name)
        )
        copy = aio_pika.Message(
            body=message.body,
            headers={**(message.headers or {}), **headers},
            content_type=message.content_type,
            message_id=message.message_id,
            type=message.type,
            correlation_id=message.correlation_id,
            timestamp=message.timestamp,
            app_id=message.app_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await asyncio.wait_for(exchange.publish(copy, routing_key=routing_key, mandatory=True), timeout=self._publish_timeout)

    async def dead_letters(self, queue_name: str) -> list[dict]:
        """What is parked in ``<queue>.dead`` (left there)."""
        assert self._connection is not None
        channel = await self._connection.channel()
        try:
            queue = await channel.declare_queue(f"{queue_name}.dead", passive=True)
            parked = []
            while (message := await queue.get(no_ack=False, fail=False)) is not None:
                parked.append(
                    {
                        "message_id": message.message_id,
                        "type": message.type,
                        "because": (message.headers or {}).get("x-parked-because"),
                        "body": message.body.decode(errors="replace")[:2000],
                    }
                )
            return parked  # unacked: closing the channel puts them all back
        finally:
            await channel.close()

    async def replay_dead_letters(self, queue_name: str) -> int:
        """Move everything parked in ``<queue>.dead`` back to ``<queue>``, attempts reset."""
        assert self._connection is not None and self._publish_channel is not None
        channel = await self._connection.channel()
        replayed = 0
        try:
            queue = await channel.declare_queue(f"{queue_name}.dead", passive=True)
            while (message := await queue.get(no_ack=False, fail=False)) is not None:
                await self._republish("", queue_name, message, {ATTEMPT_HEADER: 0})
                await message.ack()
                replayed += 1
        finally:
            await channel.close()
        return replayed

    async def subscribe(
        self,
        queue_name: str,
        subscriptions: Subscriptions,
        prefetch: int = 32,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
    ) -> None:
        """Consume the subscribed events (each bound by its routing key on its exchange) through a
        durable quorum queue, with delayed retries and a dead-letter queue (from the first
        connection on, if RabbitMQ is not reachable yet)."""
        if self._connection is None:
            self._pending.append((queue_name, subscriptions, prefetch, retry_delays))
            return
        await self._subscribe_now(queue_name, subscriptions, prefetch, retry_delays)

    async def _subscribe_now(
        self, queue_name: str, subscriptions: Subscriptions, prefetch: int, retry_delays: tuple[float, ...]
    ) -> None:
        handlers = {kind.routing_key: (kind, handler) for kind, handler in subscriptions.items()}
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
        for kind in subscriptions:
            await queue.bind(await self._exchange(channel, kind.exchange), routing_key=kind.routing_key)

        delay_queues = []
        for delay in retry_delays:
            name = f"{queue_name}.retry.{int(delay * 1000)}"
            await channel.declare_queue(
                name,
                durable=True,
                arguments={
                    "x-message-ttl": int(delay * 1000),
                    "x-dead-letter-exchange": "",  # the default exchange: back to the main queue by name
                    "x-dead-letter-routing-key": queue_name,
                },
            )
            delay_queues.append(name)

        async def park(message: AbstractIncomingMessage, reason: str) -> None:
            await self._republish(DEAD_LETTER_EXCHANGE, queue_name, message, {"x-parked-because": reason[:500]})

        async def on_message(message: AbstractIncomingMessage) -> None:
            if self._stopping:  # delivered as the consumer was being cancelled: back to the queue
                await message.nack(requeue=True)
                return
            self._handling += 1
            self._idle.clear()
            try:
                await handle(message)
            finally:
                self._handling -= 1
                if self._handling == 0:
                    self._idle.set()

        async def handle(message: AbstractIncomingMessage) -> None:
            try:
                event = IntegrationEvent.model_validate_json(message.body)
                kind, handler = handlers.get(event.type, (None, None))
                typed = kind.from_envelope(event) if kind else None
            except ValidationError:
                log.error("unreadable message %s on %s: parked in %s.dead", message.message_id, queue_name, queue_name)
                MESSAGES_HANDLED.labels(UNREADABLE, "parked").inc()
                await park(message, "unreadable")
                await message.ack()
                return
            if typed is None:  # bound once by an older binding, say: not ours to handle
                log.info("ignoring %s %s on %s", event.type, event.event_id, queue_name)
                MESSAGES_HANDLED.labels(NOT_OURS, "ignored").inc()
                await message.ack()
                return
            MESSAGES_DELIVERED.labels(event.type).inc()
            if message.redelivered:
                MESSAGES_REDELIVERED.labels(event.type).inc()
            MESSAGE_LAG_SECONDS.labels(event.type).observe(max(0.0, (datetime.now(UTC) - event.occurred_at).total_seconds()))
            token = correlation_id.set(event.correlation_id)
            started, outcome = time.perf_counter(), "handled"
            try:
                await handler(typed)
            except Exception as exc:
                attempt = int((message.headers or {}).get(ATTEMPT_HEADER, 0))
                try:
                    if is_unavailable(exc):
                        # A server we need is down (PostgreSQL restarting, Redis away): the message
                        # is not at fault, so it is never parked for it; tried again after 1 s,
                        # then every 5 s, until the server is back.
                        waited = int((message.headers or {}).get(UNAVAILABLE_HEADER, 0))
                        log.warning(
                            "%s %s: a server it needs is unavailable, trying again later: %r", event.type, event.event_id, exc
                        )
                        delay = delay_queues[min(waited, 1, len(delay_queues) - 1)]  # 1 s, then every 5 s
                        await self._republish("", delay, message, {UNAVAILABLE_HEADER: waited + 1})
                        outcome = "waiting"
                    elif attempt < len(delay_queues):
                        log.warning("%s %s failed (attempt %d), retrying later: %r", event.type, event.event_id, attempt + 1, exc)
                        await self._republish("", delay_queues[attempt], message, {ATTEMPT_HEADER: attempt + 1})
                        outcome = "retried"
                    else:
                        log.error(
                            "%s %s failed %d times; parked in %s.dead: %r",
                            event.type,
                            event.event_id,
                            attempt + 1,
                            queue_name,
                            exc,
                        )
                        await park(message, repr(exc))
                        outcome = "parked"
                    await message.ack()
                except Exception:
                    log.exception("could not move %s aside; it will be redelivered", event.event_id)
                    await message.nack(requeue=True)
                    outcome = "requeued"
            else:
                await message.ack()
            finally:
                correlation_id.reset(token)
                MESSAGE_HANDLING_SECONDS.labels(event.type).observe(time.perf_counter() - started)
                MESSAGES_HANDLED.labels(event.type, outcome).inc()

        self._consumers.append((queue, await queue.consume(on_message)))

    async def measure_queue(self, queue_name: str) -> None:
        """The depth of the queue and of its dead-letter queue into their gauges, every few seconds
        (every instance reports the same queue: alerts take the largest)."""
        while True:
            try:
                if self._connection is not None:
                    channel = await self._connection.channel()
                    try:
                        for name, gauge in ((queue_name, QUEUE_MESSAGES), (f"{queue_name}.dead", DEAD_LETTERS)):
                            declared = await channel.declare_queue(name, passive=True)
                            gauge.labels(queue_name).set(declared.declaration_result.message_count)
                    finally:
                        await channel.close()
            except Exception as exc:  # the broker away, or the queue not declared yet: the gauges wait
                log.debug("queue depth not measured: %r", exc)
            await asyncio.sleep(REFRESH_SECONDS)
