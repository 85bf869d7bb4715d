from aiohttp import web

from booking.api import BookingIn, BookingOut, BookingPage, BookingQuery, Distribution, PersonRef, UsageQuery
from booking.app_keys import OWNER, SERVICE
from common.auth import Identity, Role, require_identity
from common.contracts import BookingData
from common.errors import Problem
from common.openapi import Operation
from common.problems import parse_body, parse_path_uuid, parse_query
from common.schedule import zone_named
from common.web import json_response, page

routes = web.RouteTableDef()

MAX_IDEMPOTENCY_KEY = 200


def booking_out(booking: BookingData, viewer: Identity, assignment: dict | None = None) -> dict:
    """A booking as its viewer sees it: times in the viewer's timezone, with the offset; the client
    for professionals and admins; why this professional, when given (admins)."""
    zone = zone_named(viewer.timezone)
    out = BookingOut(
        id=booking.id,
        event_id=booking.event_id,
        event_name=booking.event_name,
        start=booking.start.astimezone(zone).isoformat(),
        end=booking.end.astimezone(zone).isoformat(),
        status=booking.status.value,
        professional=PersonRef(id=booking.professional.id, name=booking.professional.name),
        client=None if viewer.role is Role.CLIENT else PersonRef(id=booking.client.id, name=booking.client.name),
        assignment=assignment,
    )
    return out.model_dump(mode="json", exclude_none=True)


@routes.post("/bookings")
async def book(request: web.Request) -> web.Response:
    client = require_identity(request, Role.CLIENT)
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
        raise Problem(400, "invalid_idempotency_key", "Invalid Idempotency-Key", f"Use 1 to {MAX_IDEMPOTENCY_KEY} characters.")
    spec = await parse_body(request, BookingIn)
    booking, created = await request.app[SERVICE].book(client, spec, key)
    return json_response(booking_out(booking, client), status=201 if created else 200)


@routes.get("/bookings")
async def list_bookings(request: web.Request) -> web.Response:
    who = require_identity(request)
    query = parse_query(request, BookingQuery)
    bookings = await request.app[SERVICE].list_bookings(who, query.cursor, query.limit)
    return json_response(page([booking_out(b, who) for b in bookings], query.limit))


@routes.get("/bookings/distribution")
async def distribution(request: web.Request) -> web.Response:
    require_identity(request, Role.ADMIN)
    query = parse_query(request, UsageQuery)
    if query.event_id is None:
        raise Problem(422, "event_required", "Event required", "Give event_id.")
    return json_response(await request.app[SERVICE].distribution(query.event_id))


@routes.get("/bookings/{booking_id}")
async def get_booking(request: web.Request) -> web.Response:
    who = require_identity(request)
    booking, assignment = await request.app[SERVICE].get_booking(who, parse_path_uuid(request, "booking_id", "booking"))
    # Admins see the eligible professionals with their bookings that day, and the random number.
    return json_response(booking_out(booking, who, assignment if who.role is Role.ADMIN else None))


@routes.post("/bookings/{booking_id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    who = require_identity(request)
    booking = await request.app[SERVICE].cancel(who, parse_path_uuid(request, "booking_id", "booking"))
    return json_response(booking_out(booking, who))


@routes.get("/internal/usage")
async def usage(request: web.Request) -> web.Response:
    require_identity(request, Role.SERVICE)
    query = parse_query(request, UsageQuery)
    return json_response({"items": await request.app[SERVICE].usage(query.event_id)})


@routes.get("/internal/snapshot")
async def snapshot(request: web.Request) -> web.Response:
    """The capacity record's events and shifts, for availability's rebuild and reconcile."""
    require_identity(request, Role.SERVICE)
    query = parse_query(request, UsageQuery)
    return json_response({"events": await request.app[OWNER].snapshot(query.event_id)})


@routes.get("/internal/audit")
async def audit(request: web.Request) -> web.Response:
    """The record's audit (PostgreSQL alone), for reconcile's report."""
    require_identity(request, Role.SERVICE)
    query = parse_query(request, UsageQuery)
    return json_response((await request.app[OWNER].audit(query.event_id)).as_dict())


@routes.post("/internal/settle")
async def settle(request: web.Request) -> web.Response:
    """Move or flag every booking the record gives no unit for: reconcile's repair."""
    require_identity(request, Role.SERVICE)
    query = parse_query(request, UsageQuery)
    return json_response((await request.app[OWNER].settle(query.event_id)).as_dict())


CLIENT, PRO, ADMIN = "client", "professional", "admin"
OPERATIONS = [
    Operation(
        "POST",
        "/bookings",
        "Book a slot; a professional is assigned",
        (CLIENT,),
        BookingIn,
        responses={201: BookingOut, 200: BookingOut},
        headers=("Idempotency-Key",),
    ),
    Operation(
        "GET",
        "/bookings",
        "My Appointments (clients), assigned ones (professionals), all (admins), newest slot last",
        (CLIENT, PRO, ADMIN),
        query=BookingQuery,
        responses={200: BookingPage},
    ),
    Operation(
        "GET",
        "/bookings/distribution",
        "Bookings per professional and day",
        (ADMIN,),
        query=UsageQuery,
        responses={200: Distribution},
    ),
    Operation("GET", "/bookings/{booking_id}", "A booking", (CLIENT, PRO, ADMIN), responses={200: BookingOut}),
    Operation("POST", "/bookings/{booking_id}/cancel", "Cancel a booking", (CLIENT, ADMIN), responses={200: BookingOut}),
]
