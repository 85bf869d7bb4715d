"""A stand-in for an OpenTelemetry collector: an OTLP/HTTP receiver (``POST /v1/traces``, protobuf)
that keeps in memory the spans the services' processes export to it, for tests to read; for
benchmarks, with ``keep=False``, it only counts them (a collector's work is not ours to measure)."""

import gzip
from dataclasses import dataclass

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

SERVER, CLIENT, PRODUCER, CONSUMER = (
    ProtoSpan.SPAN_KIND_SERVER,
    ProtoSpan.SPAN_KIND_CLIENT,
    ProtoSpan.SPAN_KIND_PRODUCER,
    ProtoSpan.SPAN_KIND_CONSUMER,
)


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str | None
    attributes: dict


def _value(any_value):
    return getattr(any_value, any_value.WhichOneof("value")) if any_value.WhichOneof("value") else None


class SpanStore:
    def __init__(self, keep: bool = True) -> None:
        self.keep = keep
        self.spans: list[ReceivedSpan] = []
        self.received = 0  # spans, kept or not
        self._runner: web.AppRunner | None = None

    async def start(self, port: int) -> str:
        """Listen on 127.0.0.1:``port``; the endpoint for ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/traces", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest.FromString(body)
        for resource_spans in export.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                self.received += len(scope_spans.spans)
                if not self.keep:
                    continue
                for span in scope_spans.spans:
                    self.spans.append(
                        ReceivedSpan(
                            service=resource.get("service.name", "?"),
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex() or None,
                            attributes={a.key: _value(a.value) for a in span.attributes},
                        )
                    )
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(), content_type="application/x-protobuf")

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.trace_id == trace_id]
