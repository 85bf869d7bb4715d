"""Prometheus metrics: what every service measures the same way (its declared endpoints, the
messages it consumes, its outbox, the limits it enforces), and its ``/metrics``.

One process is one scrape target: a service of N processes is N targets (as N pods are), each with
its own figures, summed by Prometheus; no process shares memory or files with another. Label values
are bounded: routes as declared, event types as subscribed, statuses, outcomes; never an id or an
address. A service's own figures (bookings, mails) are declared in its ``metrics`` module.
"""

import asyncio
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

from common.endpoints import Endpoint

# Our answers take milliseconds: the default buckets start at 5 ms.
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# How far behind a consumer is: from milliseconds (keeping up) to a quarter of an hour.
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
CLIENT_CLOSED = 499  # nginx's status for a request whose client went away before the answer

HTTP_REQUEST_SECONDS = Histogram(
    "http_server_request_duration_seconds",
    "Requests to declared endpoints: seconds to the answer, by method, route (as declared) and status",
    ["method", "route", "status"],
    buckets=SECONDS_BUCKETS,
)
MESSAGES_DELIVERED = Counter("messages_delivered_total", "Messages delivered to this consumer", ["event_type"])
MESSAGES_REDELIVERED = Counter(
    "messages_redelivered_total",
    "Messages delivered again because an earlier delivery was never acked (a consumer or connection died)",
    ["event_type"],
)
MESSAGES_HANDLED = Counter(
    "messages_handled_total",
    "Messages done with, by outcome: handled; retried (a failure, tried again later); waiting (a server it "
    "needs is away); parked (in the dead-letter queue); requeued (could not be moved aside); ignored (not ours)",
    ["event_type", "outcome"],
)
MESSAGE_HANDLING_SECONDS = Histogram(
    "message_handling_duration_seconds", "Seconds a message's handler took", ["event_type"], buckets=SECONDS_BUCKETS
)
MESSAGE_LAG_SECONDS = Histogram(
    "message_lag_seconds",
    "Seconds from the event's occurrence to its handling starting here: how far behind the consumer is",
    ["event_type"],
    buckets=LAG_BUCKETS,
)
QUEUE_MESSAGES = Gauge("queue_messages", "Messages waiting in the service's queue, not yet delivered", ["queue"])
DEAD_LETTERS = Gauge("dead_letter_messages", "Messages parked in the queue's dead-letter queue", ["queue"])
OUTBOX_PUBLISHED = Counter("outbox_events_published_total", "Events this relay published from the outbox")
OUTBOX_PUBLISH_FAILURES = Counter("outbox_publish_failures_total", "Publishes the broker did not confirm (tried again)")
OUTBOX_PENDING = Gauge("outbox_pending_events", "Events written to the outbox and not yet published")
OUTBOX_OLDEST_SECONDS = Gauge("outbox_oldest_pending_age_seconds", "Age of the oldest event not yet published (0: none)")
LIMITS_HIT = Counter("rate_limits_hit_total", "Attempts refused by a rate limit, by limit", ["limit"])

# Gauges read from a server (queue depths, the outbox backlog) are refreshed this often.
REFRESH_SECONDS = 5.0


@web.middleware
async def measure_middleware(request: web.Request, handler):
    """Time every request to a declared endpoint (``common.endpoints``), by the route it was
    declared with and the status it was answered with: a new endpoint is measured as it is added."""
    if not isinstance(getattr(request.match_info.handler, "__self__", None), Endpoint):
        return await handler(request)
    started, status = time.perf_counter(), 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as answer:
        status = answer.status
        raise
    except asyncio.CancelledError:
        status = CLIENT_CLOSED
        raise
    finally:
        route = request.match_info.route.resource.canonical
        HTTP_REQUEST_SECONDS.labels(request.method, route, str(status)).observe(time.perf_counter() - started)


async def serve_metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})
