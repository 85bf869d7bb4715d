"""HTTP handlers: each endpoint declared once (route, roles, models, OpenAPI); validate, call the
service layer, answer."""

from aiohttp import ClientConnectionResetError, web

from availability.api import AvailabilityOut, AvailabilityQuery, MonthOut, MonthQuery, first_of_month
from availability.app_keys import AVAILABILITY
from availability.streams import Listener
from common.endpoints import Call, Endpoints, Header
from common.web import Rendered, conditional

api = Endpoints()


def _zone_name(call: Call[None, AvailabilityQuery] | Call[None, MonthQuery]) -> str | None:
    """The zone asked for, else the signed-in reader's own, else None: the event's."""
    return call.query.tz or (call.who.timezone if call.who else None)


@api.get(
    "/availability",
    "A day's slots in a timezone (default: yours, else the event's)",
    query=AvailabilityQuery,
    responses={200: AvailabilityOut, 304: None},
    headers=(Header("If-None-Match", max_length=2000),),
    optional_sign_in=True,
)
async def get_availability(request: web.Request, call: Call[None, AvailabilityQuery]) -> web.Response:
    """Answered 304 to the ETag of an unchanged day: a page polling a day costs no parsing on
    either side and no bytes on the wire until a slot of it changes. At most ``ANSWER_MAX_AGE_SECONDS``
    behind the counters (the answers the service keeps, and the public entry after it)."""
    query = call.query
    availability = request.app[AVAILABILITY]
    answer = await availability.day(query.event_id, query.date, _zone_name(call))
    return _kept_at_the_edge(conditional(answer, call.headers["If-None-Match"]), availability.edge_keep_ms)


@api.get(
    "/availability/month",
    "A month at a glance: which days have a free slot, and how many units (one request fills a month view)",
    query=MonthQuery,
    responses={200: MonthOut, 304: None},
    headers=(Header("If-None-Match", max_length=2000),),
    optional_sign_in=True,
)
async def get_month_availability(request: web.Request, call: Call[None, MonthQuery]) -> web.Response:
    """Kept, revalidated and bounded like a day's answer."""
    query = call.query
    availability = request.app[AVAILABILITY]
    answer = await availability.month(query.event_id, first_of_month(query.month), _zone_name(call))
    return _kept_at_the_edge(conditional(answer, call.headers["If-None-Match"]), availability.edge_keep_ms)


EDGE_KEEP_HEADER = "X-Edge-Keep-Ms"  # read and taken off by the public entry (deploy/edge/routes.conf.template)


def _kept_at_the_edge(response: web.Response, keep_ms: int) -> web.Response:
    """The answer, telling the public entry how long it may keep it (``EDGE_KEEP_SECONDS``)."""
    if keep_ms > 0:
        response.headers[EDGE_KEEP_HEADER] = str(keep_ms)
    return response


@api.get(
    "/availability/stream",
    "A day's answer as a stream of server-sent events: now, and again whenever a slot of it changes",
    query=AvailabilityQuery,
    responses={200: AvailabilityOut},
    headers=(Header("Last-Event-ID", max_length=200),),
    streamed=True,
    optional_sign_in=True,
)
async def stream_availability(request: web.Request, call: Call[None, AvailabilityQuery]) -> web.StreamResponse:
    """Each answer is one ``availability`` event whose id is the answer's ETag: a client that
    reconnects with it (``Last-Event-ID``) is sent nothing until the day changes, any other gets
    the day as it is now. A client that goes away is noticed within a second; one that reads too
    slowly to keep up is let go (it reconnects and is sent the day as it is then). Errors (an
    unknown event, a bad query) are answered before the stream starts."""
    query, zone_name = call.query, _zone_name(call)
    availability = request.app[AVAILABILITY]
    first = await availability.day(query.event_id, query.date, zone_name)  # raises before anything is sent
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    held = call.headers["Last-Event-ID"]
    await response.write(b"retry: 2000\n\n" + _server_sent_event(None if first.etag == held else first))

    def gone() -> bool:
        return request.transport is None or request.transport.is_closing()

    async def send(answer: Rendered | None) -> bool:
        if gone() or request.transport.get_write_buffer_size() > BEHIND_BYTES:
            return False
        try:
            await response.write(_server_sent_event(answer))
        except (ConnectionResetError, ClientConnectionResetError):
            return False
        return True

    await availability.follow_day(query.event_id, query.date, zone_name, Listener(send, gone, last_sent=first.etag))
    return response


BEHIND_BYTES = 256 * 1024  # answers a client has not read yet, at most, before it is let go


def _server_sent_event(answer: Rendered | None) -> bytes:
    """An answer as an ``availability`` event (its id the answer's ETag), or None as a comment that
    only says the stream is alive. Built once per answer, however many streams send it."""
    if answer is None:
        return b": alive\n\n"
    if (event := _events.get(answer.etag)) is None:
        if len(_events) >= 1000:
            _events.clear()
        event = _events[answer.etag] = b"event: availability\nid: " + answer.etag.encode() + b"\ndata: " + answer.body + b"\n\n"
    return event


_events: dict[str, bytes] = {}  # the answers streams send now, as events
