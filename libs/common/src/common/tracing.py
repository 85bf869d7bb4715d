"""Traces with OpenTelemetry, configured by its standard ``OTEL_*`` variables, off by default.

Off (``OTEL_TRACES_EXPORTER`` unset or ``none``, or ``OTEL_SDK_DISABLED=true``) nothing is
instrumented: no middleware, no wrapped client or driver; the API's tracer does nothing, and an
outbox row keeps no context. On, OpenTelemetry's own instrumentations trace the aiohttp server and
client, aio-pika (the context travels in message headers), asyncpg and redis, and spans go out in
batches to the exporter (``otlp``: ``OTEL_EXPORTER_OTLP_ENDPOINT``, as http/protobuf).

An event leaves through the outbox, after the request has ended: its row keeps the request's trace
context (``current_context``), and the relay publishes it inside that context (``continued``), so
one trace runs from the request through the broker to whatever the consumers do.
"""

import contextlib
import os
from collections.abc import Iterator

from opentelemetry import context, propagate, trace

from common.settings import ServiceSettings

# Probes and scrapes every few seconds would bury the traces worth reading.
PROBES = "/healthz,/readyz,/metrics"
_started = False  # until start_tracing, no span exists: an outbox row need not ask for one


def tracing_wanted(settings: ServiceSettings) -> bool:
    return settings.otel_traces_exporter != "none" and not settings.otel_sdk_disabled


def configure_tracing(settings: ServiceSettings) -> None:
    """Tracing as ``OTEL_*`` asks, before the app is built (the server's instrumentation adds its
    middleware to every application made after it)."""
    if not tracing_wanted(settings):
        return
    if settings.otel_traces_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    else:
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        exporter = ConsoleSpanExporter()
    start_tracing(settings.service_name, exporter)


def _instrumentors() -> list:
    """OpenTelemetry's instrumentations of every library we talk through."""
    from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    return [
        AioHttpServerInstrumentor(),
        AioHttpClientInstrumentor(),
        AioPikaInstrumentor(),
        AsyncPGInstrumentor(),
        RedisInstrumentor(),
    ]


def start_tracing(service_name: str, exporter, batched: bool = True):
    """Spans of this process to ``exporter``, every library we use instrumented; the provider."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    global _started
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter) if batched else SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _started = True
    os.environ.setdefault("OTEL_PYTHON_AIOHTTP_SERVER_EXCLUDED_URLS", PROBES)  # read by the instrumentation
    for instrumentor in _instrumentors():
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=provider)
    return provider


def stop_tracing(provider) -> None:
    """Every library as it was, and ``provider``'s spans flushed (a test that traced for a while)."""
    for instrumentor in _instrumentors():
        instrumentor.uninstrument()
    provider.shutdown()


def current_context() -> dict[str, str] | None:
    """The current trace context as W3C headers, to keep with an outbox row; None outside a trace
    (and always when tracing is off)."""
    if not _started or not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def continued(carrier: dict[str, str] | None) -> contextlib.AbstractContextManager[None]:
    """Inside the trace ``carrier`` came from (nothing, without one: the relay of a service that
    does not trace pays no more than this call)."""
    return _attached(carrier) if carrier else contextlib.nullcontext()


@contextlib.contextmanager
def _attached(carrier: dict[str, str]) -> Iterator[None]:
    token = context.attach(propagate.extract(carrier))
    try:
        yield
    finally:
        context.detach(token)
