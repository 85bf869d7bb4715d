"""HTTP handlers: each endpoint declared once (route, roles, models, OpenAPI); validate, call the
service layer, answer. Nothing else."""

from aiohttp import web

from common.contracts import EventData
from common.endpoints import Call, Endpoints
from common.roles import Role
from common.web import json_response, page
from shifts.api import (
    Blackout,
    BlackoutIn,
    EventIn,
    EventPage,
    EventPatch,
    PageQuery,
    ShiftIn,
    ShiftOut,
    ShiftPage,
    ShiftPatch,
    ShiftQuery,
)
from shifts.app_keys import SERVICE

api = Endpoints()
ADMIN, STAFF = (Role.ADMIN,), (Role.PROFESSIONAL, Role.ADMIN)


def _shift_out(data) -> dict:
    return ShiftOut.model_validate(
        {**data.model_dump(), "professional": {"id": data.professional.id, "name": data.professional.name}}
    ).model_dump(mode="json")


@api.post("/events", "Create an event", roles=ADMIN, body=EventIn, responses={201: EventData})
async def create_event(request: web.Request, call: Call[EventIn, None]) -> web.Response:
    event = await request.app[SERVICE].create_event(call.body)
    return json_response(event.model_dump(mode="json"), status=201)


@api.get("/events", "List events", query=PageQuery, responses={200: EventPage})
async def list_events(request: web.Request, call: Call[None, PageQuery]) -> web.Response:
    events = await request.app[SERVICE].list_events(call.query.cursor, call.query.limit)
    return json_response(page([e.model_dump(mode="json") for e in events], call.query.limit))


@api.get("/events/{event_id}", "An event with its blackouts", responses={200: EventData})
async def get_event(request: web.Request, call: Call[None, None]) -> web.Response:
    event = await request.app[SERVICE].get_event(call.ids["event_id"])
    return json_response(event.model_dump(mode="json"))


@api.patch("/events/{event_id}", "Change an event", roles=ADMIN, body=EventPatch, responses={200: EventData})
async def update_event(request: web.Request, call: Call[EventPatch, None]) -> web.Response:
    event = await request.app[SERVICE].update_event(call.ids["event_id"], call.body)
    return json_response(event.model_dump(mode="json"))


@api.post(
    "/events/{event_id}/blackouts", "Add a blackout (daily or one-off)", roles=ADMIN, body=BlackoutIn, responses={201: Blackout}
)
async def add_blackout(request: web.Request, call: Call[BlackoutIn, None]) -> web.Response:
    blackout = await request.app[SERVICE].add_blackout(call.ids["event_id"], call.body)
    return json_response(blackout.model_dump(mode="json"), status=201)


@api.delete("/events/{event_id}/blackouts/{blackout_id}", "Remove a blackout", roles=ADMIN, responses={204: None})
async def delete_blackout(request: web.Request, call: Call[None, None]) -> web.Response:
    await request.app[SERVICE].delete_blackout(call.ids["event_id"], call.ids["blackout_id"])
    return web.Response(status=204)


@api.post(
    "/shifts", "Add a shift (professionals their own; admins anyone's)", roles=STAFF, body=ShiftIn, responses={201: ShiftOut}
)
async def create_shift(request: web.Request, call: Call[ShiftIn, None]) -> web.Response:
    shift = await request.app[SERVICE].create_shift(call.caller, call.body)
    return json_response(_shift_out(shift), status=201)


@api.get("/shifts", "Shifts (professionals: their own)", roles=STAFF, query=ShiftQuery, responses={200: ShiftPage})
async def list_shifts(request: web.Request, call: Call[None, ShiftQuery]) -> web.Response:
    query = call.query
    shifts = await request.app[SERVICE].list_shifts(call.caller, query.event_id, query.cursor, query.limit)
    return json_response(page([_shift_out(s) for s in shifts], query.limit))


@api.get("/shifts/{shift_id}", "A shift", roles=STAFF, responses={200: ShiftOut})
async def get_shift(request: web.Request, call: Call[None, None]) -> web.Response:
    shift = await request.app[SERVICE].get_shift(call.caller, call.ids["shift_id"])
    return json_response(_shift_out(shift))


@api.patch("/shifts/{shift_id}", "Change a shift", roles=STAFF, body=ShiftPatch, responses={200: ShiftOut})
async def change_shift(request: web.Request, call: Call[ShiftPatch, None]) -> web.Response:
    shift = await request.app[SERVICE].change_shift(call.caller, call.ids["shift_id"], call.body)
    return json_response(_shift_out(shift))


@api.delete("/shifts/{shift_id}", "Cancel a shift", roles=STAFF, responses={200: ShiftOut})
async def cancel_shift(request: web.Request, call: Call[None, None]) -> web.Response:
    shift = await request.app[SERVICE].cancel_shift(call.caller, call.ids["shift_id"])
    return json_response(_shift_out(shift))
