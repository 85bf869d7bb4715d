"""JSON logs on stdout, each line carrying the service, the current correlation id, and the trace
and span it was written in (``trace_id``, ``span_id``; null outside a trace, as when tracing is off)."""

import logging
import sys
import uuid
from contextvars import ContextVar

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def new_correlation_id() -> str:
    return uuid.uuid4().hex


class ContextFilter(logging.Filter):
    """Stamps each record with the service, the correlation id and the current trace and span."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.correlation_id = correlation_id.get()
        span = trace.get_current_span().get_span_context()
        record.trace_id, record.span_id = (f"{span.trace_id:032x}", f"{span.span_id:016x}") if span.is_valid else (None, None)
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(ContextFilter(service))
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(service)s %(correlation_id)s %(trace_id)s %(span_id)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("aio_pika").setLevel(logging.WARNING)
    logging.getLogger("aiormq").setLevel(logging.WARNING)
