"""HTTP handlers: each endpoint declared once (route, roles, models, OpenAPI); validate, call the
service layer, answer."""

from aiohttp import web

from booking.api import (
    BookingIn,
    BookingOut,
    BookingPage,
    BookingQuery,
    CalendarFeedOut,
    ClaimIn,
    Distribution,
    RescheduleIn,
    UsageQuery,
    WaitlistIn,
    WaitlistOut,
    WaitlistPage,
    booking_out,
)
from booking.app_keys import CALENDAR_FEEDS, SERVICE, WAITLIST
from common.auth import Identity
from common.endpoints import Call, Document, Endpoints, Header
from common.errors import Problem
from common.roles import PEOPLE, Role
from common.web import conditional, json_response, page, rendered

api = Endpoints()


@api.post(
    "/bookings",
    "Book a slot; a professional is assigned",
    roles=(Role.CLIENT,),
    body=BookingIn,
    responses={201: BookingOut, 200: BookingOut},
    headers=(Header("Idempotency-Key"),),
)
async def book_slot(request: web.Request, call: Call[BookingIn, None]) -> web.Response:
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
async def get_booking_distribution(request: web.Request, call: Call[None, UsageQuery]) -> web.Response:
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
async def cancel_booking(request: web.Request, call: Call[None, None]) -> web.Response:
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
async def reschedule_booking(request: web.Request, call: Call[RescheduleIn, None]) -> web.Response:
    moved = await request.app[SERVICE].reschedule(call.caller, call.ids["booking_id"], call.body, call.headers["Idempotency-Key"])
    return json_response(booking_out(moved, call.caller))


@api.post(
    "/waitlist",
    "Wait for a full slot: a unit freed there is offered to the first waiter",
    roles=(Role.CLIENT,),
    body=WaitlistIn,
    responses={201: WaitlistOut, 200: WaitlistOut},
)
async def join_waitlist(request: web.Request, call: Call[WaitlistIn, None]) -> web.Response:
    entry, created = await request.app[WAITLIST].join(call.caller, call.body)
    return json_response(entry, status=201 if created else 200)


@api.get("/waitlist", "My places on waitlists, with their positions", roles=(Role.CLIENT,), responses={200: WaitlistPage})
async def list_waitlist(request: web.Request, call: Call[None, None]) -> web.Response:
    entries = await request.app[WAITLIST].entries(call.caller)
    return json_response({"items": entries, "next_cursor": None})


@api.delete("/waitlist/{waitlist_id}", "Leave a waitlist", roles=(Role.CLIENT,), responses={200: WaitlistOut})
async def leave_waitlist(request: web.Request, call: Call[None, None]) -> web.Response:
    return json_response(await request.app[WAITLIST].withdraw(call.caller, call.ids["waitlist_id"]))


@api.post(
    "/waitlist/{waitlist_id}/claim",
    "Book the unit offered to a place on a waitlist (signed in, or with the offer mail's token)",
    body=ClaimIn,
    responses={201: BookingOut, 200: BookingOut},
    optional_sign_in=True,
)
async def claim_waitlist_offer(request: web.Request, call: Call[ClaimIn, None]) -> web.Response:
    booking, created = await request.app[WAITLIST].claim(call.who, call.ids["waitlist_id"], call.body.token)
    viewer = call.who or Identity(
        id=booking.client.id, role=Role.CLIENT, name=booking.client.name, email=booking.client.email,
        timezone=booking.client.timezone,
    )  # fmt: skip
    return json_response(booking_out(booking, viewer), status=201 if created else 200)


@api.post(
    "/me/calendar-feed",
    "A private calendar subscription URL for my appointments (a new one replaces the one I had)",
    roles=(Role.CLIENT, Role.PROFESSIONAL),
    responses={201: CalendarFeedOut},
)
async def create_calendar_feed(request: web.Request, call: Call[None, None]) -> web.Response:
    return json_response({"url": await request.app[CALENDAR_FEEDS].make(call.caller)}, status=201)


@api.delete(
    "/me/calendar-feed",
    "Revoke my calendar subscription URL",
    roles=(Role.CLIENT, Role.PROFESSIONAL),
    responses={204: None},
)
async def revoke_calendar_feed(request: web.Request, call: Call[None, None]) -> web.Response:
    await request.app[CALENDAR_FEEDS].revoke(call.caller)
    return web.Response(status=204)


@api.get(
    "/calendar/{token:[A-Za-z0-9_-]+}.ics",
    "My appointments as iCalendar, for a calendar application to subscribe to (the URL is the key: no sign-in)",
    responses={200: Document("text/calendar"), 304: None},
    headers=(Header("If-None-Match", max_length=2000),),
)
async def get_calendar_feed(request: web.Request, call: Call[None, None]) -> web.Response:
    document = await request.app[CALENDAR_FEEDS].calendar(request.match_info["token"])
    return conditional(rendered(document, "text/calendar"), call.headers["If-None-Match"])
