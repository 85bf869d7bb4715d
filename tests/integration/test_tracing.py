"""The trace context through the outbox and the broker, in one process with OpenTelemetry's
in-memory exporter, on real PostgreSQL and RabbitMQ: the relay, in a task of its own after the
request has ended, publishes inside the request's trace, and the consumer's handler runs in it."""

import asyncio
import logging
import uuid
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import text

import shifts
from common.db import create_engine, session_factory
from common.events import EventCreated
from common.logging import ContextFilter
from common.messaging import Broker
from common.migrations import migrate
from common.outbox import Outbox, OutboxRelay, SessionOutboxRows
from common.tracing import start_tracing, stop_tracing
from shifts.adapters.db import OUTBOX
from tests.factories import event_data, message


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.addFilter(ContextFilter("test"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def spans():
    """Tracing on in this process for one test, every span kept in memory; off again after it."""
    exporter = InMemorySpanExporter()
    provider = start_tracing("test", exporter, batched=False)
    yield exporter
    stop_tracing(provider)  # what the rest of the session's tests do in this process is not kept


async def test_the_relay_and_the_consumer_continue_the_trace_of_the_request_that_wrote_the_event(servers, spans):
    database_url = servers.database_url(f"tracing_{uuid.uuid4().hex[:6]}")
    await migrate(Path(shifts.__file__).parent, database_url)  # a service's schema, outbox included
    engine = create_engine(database_url)
    rabbitmq_url = servers.another_vhost(f"tracing_{uuid.uuid4().hex[:6]}")  # nobody else's consumers
    publisher, consumer = Broker(rabbitmq_url, "test-relay"), Broker(rabbitmq_url, "test-consumer")
    kept = Kept()
    log = logging.getLogger("tests.tracing")
    log.addHandler(kept)
    handled: asyncio.Future = asyncio.get_running_loop().create_future()

    async def handle(event) -> None:
        log.warning("handled %s", event.event_id)
        handled.set_result(trace.get_current_span().get_span_context())

    try:
        await publisher.connect()
        await consumer.connect()
        await consumer.subscribe(f"test.tracing.{uuid.uuid4().hex[:6]}", {EventCreated: handle})
        definition = event_data()
        event = message("event.created", definition.id, 1, definition)

        tracer = trace.get_tracer("tests")
        with tracer.start_as_current_span("POST /events", kind=SpanKind.SERVER) as request:
            async with session_factory(engine)() as session, session.begin():
                await Outbox(OUTBOX).write(session, [event])
        request_context = request.get_span_context()

        # The relay's pass, as its background task makes it: no trace of its own.
        relay = OutboxRelay(SessionOutboxRows(engine), publisher)
        assert trace.get_current_span() is trace.INVALID_SPAN
        assert await asyncio.create_task(relay.publish_pending()) == (1, 0)
        handler_context = await asyncio.wait_for(handled, 10)
        async with engine.connect() as connection:
            kept_context = (await connection.execute(text("SELECT trace_context FROM outbox"))).scalar_one()
    finally:
        log.removeHandler(kept)
        await consumer.close()
        await publisher.close()
        await engine.dispose()

    assert f"{request_context.trace_id:032x}" in kept_context["traceparent"]  # kept with the row
    finished = {span.context.span_id: span for span in spans.get_finished_spans()}
    [publish] = [s for s in finished.values() if s.kind is SpanKind.PRODUCER]
    [receive] = [s for s in finished.values() if s.kind is SpanKind.CONSUMER]
    assert publish.parent.span_id == request_context.span_id  # the relay continued the request's trace
    assert receive.parent.span_id == publish.context.span_id  # the context rode in the message's headers
    assert handler_context.span_id == receive.context.span_id  # the handler runs in the receive's span
    assert {publish.context.trace_id, receive.context.trace_id, handler_context.trace_id} == {request_context.trace_id}
    [line] = [r for r in kept.records if r.getMessage().startswith("handled")]
    assert (line.trace_id, line.span_id) == (f"{request_context.trace_id:032x}", f"{receive.context.span_id:016x}")
