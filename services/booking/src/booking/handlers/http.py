"""HTTP handlers: each endpoint declared once (route, roles, models, OpenAPI); validate, call the
service layer, answer."""

from aiohttp import web

from booking.api import BookingIn, BookingOut, BookingPage, BookingQuery, Distribution, RescheduleIn, UsageQuery, booking_out
from booking.app_keys import SERVICE
from common.endpoints import Call, Endpoints, Header
from common.errors import Problem
from common.roles import PEOPLE, Role
from common.web import json_response, page

api = Endpoints()


@api.post(
    "/bookings",
    "Book a slot; a professional is assigned",
    roles=(Role.CLIENT,),
    body=BookingIn,
    responses={201: BookingOut, 200: BookingOut},
    headers=(Header("Idempotency-Key"),),
)
async def book(request: web.Request, call: Call[BookingIn, None]) -> web.Response:
    booking, created = await request.app[SERVICE].book(call.caller, call.body, call.headers["Idempotency-Key"])
    return json_response(booking_out(booking, call.caller), status=201 if created else 200)


@api.get(
    "/bookings",
    "My Appointments (clients), assigned ones (professionals), all (admins), newest slot last",
    roles=PEOPLE,
    query=BookingQuery,
    responses={200: BookingPage},
)
async def list_bookings(request: web.Request, call: Call[None, BookingQuery]) -> web.Response:
    bookings = await request.app[SERVICE].list_bookings(call.caller, call.query.cursor, call.query.limit)
    return json_response(page([booking_out(b, call.caller) for b in bookings], call.query.limit))


@api.get(
    "/bookings/distribution",
    "Bookings per professional and day",
    roles=(Role.ADMIN,),
    query=UsageQuery,
    responses={200: Distribution},
)
async def distribution(request: web.Request, call: Call[None, UsageQuery]) -> web.Response:
    if call.query.event_id is None:
        raise Problem(422, "event_required", "Event required", "Give event_id.")
    return json_response(await request.app[SERVICE].distribution(call.query.event_id))


@api.get("/bookings/{booking_id}", "A booking", roles=PEOPLE, responses={200: BookingOut})
async def get_booking(request: web.Request, call: Call[None, None]) -> web.Response:
    who = call.caller
    booking, assignment = await request.app[SERVICE].get_booking(who, call.ids["booking_id"])
    # Admins see the eligible professionals with their bookings that day, and the random number.
    return json_response(booking_out(booking, who, assignment if who.role is Role.ADMIN else None))


@api.post("/bookings/{booking_id}/cancel", "Cancel a booking", roles=(Role.CLIENT, Role.ADMIN), responses={200: BookingOut})
async def cancel(request: web.Request, call: Call[None, None]) -> web.Response:
    booking = await request.app[SERVICE].cancel(call.caller, call.ids["booking_id"])
    return json_response(booking_out(booking, call.caller))


@api.post(
    "/bookings/{booking_id}/reschedule",
    "Move a booking to another slot (its professional kept when they have room there)",
    roles=(Role.CLIENT, Role.ADMIN),
    body=RescheduleIn,
    responses={200: BookingOut},
    headers=(Header("Idempotency-Key"),),
)
async def reschedule(request: web.Request, call: Call[RescheduleIn, None]) -> web.Response:
    moved = await request.app[SERVICE].reschedule(call.caller, call.ids["booking_id"], call.body, call.headers["Idempotency-Key"])
    return json_response(booking_out(moved, call.caller))
