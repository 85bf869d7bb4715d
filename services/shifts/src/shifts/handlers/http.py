"""HTTP handlers: validate, call the service layer, answer. Nothing else."""

from aiohttp import web

from common.auth import Role, require_identity
from common.contracts import EventData
from common.openapi import Operation
from common.problems import parse_body, parse_path_uuid, parse_query
from common.web import json_response, page
from shifts.api import (
    Blackout,
    BlackoutIn,
    EventIn,
    EventPage,
    EventPatch,
    PageQuery,
    ProfessionalIn,
    ShiftIn,
    ShiftOut,
    ShiftPage,
    ShiftPatch,
    ShiftQuery,
)
from shifts.app_keys import SERVICE

routes = web.RouteTableDef()


def _shift_out(data) -> dict:
    return ShiftOut.model_validate(
        {**data.model_dump(), "professional": {"id": data.professional.id, "name": data.professional.name}}
    ).model_dump(mode="json")


@routes.post("/events")
async def create_event(request: web.Request) -> web.Response:
    require_identity(request, Role.ADMIN)
    spec = await parse_body(request, EventIn)
    event = await request.app[SERVICE].create_event(spec)
    return json_response(event.model_dump(mode="json"), status=201)


@routes.get("/events")
async def list_events(request: web.Request) -> web.Response:
    query = parse_query(request, PageQuery)
    events = await request.app[SERVICE].list_events(query.cursor, query.limit)
    return json_response(page([e.model_dump(mode="json") for e in events], query.limit))


@routes.get("/events/{event_id}")
async def get_event(request: web.Request) -> web.Response:
    event = await request.app[SERVICE].get_event(parse_path_uuid(request, "event_id", "event"))
    return json_response(event.model_dump(mode="json"))


@routes.patch("/events/{event_id}")
async def update_event(request: web.Request) -> web.Response:
    require_identity(request, Role.ADMIN)
    event_id = parse_path_uuid(request, "event_id", "event")
    patch = await parse_body(request, EventPatch)
    event = await request.app[SERVICE].update_event(event_id, patch)
    return json_response(event.model_dump(mode="json"))


@routes.post("/events/{event_id}/blackouts")
async def add_blackout(request: web.Request) -> web.Response:
    require_identity(request, Role.ADMIN)
    event_id = parse_path_uuid(request, "event_id", "event")
    spec = await parse_body(request, BlackoutIn)
    blackout = await request.app[SERVICE].add_blackout(event_id, spec)
    return json_response(blackout.model_dump(mode="json"), status=201)


@routes.delete("/events/{event_id}/blackouts/{blackout_id}")
async def delete_blackout(request: web.Request) -> web.Response:
    require_identity(request, Role.ADMIN)
    await request.app[SERVICE].delete_blackout(
        parse_path_uuid(request, "event_id", "event"), parse_path_uuid(request, "blackout_id", "blackout")
    )
    return web.Response(status=204)


@routes.post("/shifts")
async def create_shift(request: web.Request) -> web.Response:
    who = require_identity(request, Role.PROFESSIONAL, Role.ADMIN)
    spec = await parse_body(request, ShiftIn)
    shift = await request.app[SERVICE].create_shift(who, spec)
    return json_response(_shift_out(shift), status=201)


@routes.get("/shifts")
async def list_shifts(request: web.Request) -> web.Response:
    who = require_identity(request, Role.PROFESSIONAL, Role.ADMIN)
    query = parse_query(request, ShiftQuery)
    shifts = await request.app[SERVICE].list_shifts(who, query.event_id, query.cursor, query.limit)
    return json_response(page([_shift_out(s) for s in shifts], query.limit))


@routes.get("/shifts/{shift_id}")
async def get_shift(request: web.Request) -> web.Response:
    who = require_identity(request, Role.PROFESSIONAL, Role.ADMIN)
    shift = await request.app[SERVICE].get_shift(who, parse_path_uuid(request, "shift_id", "shift"))
    return json_response(_shift_out(shift))


@routes.patch("/shifts/{shift_id}")
async def change_shift(request: web.Request) -> web.Response:
    who = require_identity(request, Role.PROFESSIONAL, Role.ADMIN)
    shift_id = parse_path_uuid(request, "shift_id", "shift")
    patch = await parse_body(request, ShiftPatch)
    shift = await request.app[SERVICE].change_shift(who, shift_id, patch)
    return json_response(_shift_out(shift))


@routes.delete("/shifts/{shift_id}")
async def cancel_shift(request: web.Request) -> web.Response:
    who = require_identity(request, Role.PROFESSIONAL, Role.ADMIN)
    shift = await request.app[SERVICE].cancel_shift(who, parse_path_uuid(request, "shift_id", "shift"))
    return json_response(_shift_out(shift))


@routes.put("/internal/professionals/{professional_id}")
async def upsert_professional(request: web.Request) -> web.Response:
    require_identity(request, Role.SERVICE)
    professional_id = parse_path_uuid(request, "professional_id", "professional")
    spec = await parse_body(request, ProfessionalIn)
    await request.app[SERVICE].upsert_professional(professional_id, spec)
    return web.Response(status=204)


ADMIN, PRO = "admin", "professional"
OPERATIONS = [
    Operation("POST", "/events", "Create an event", (ADMIN,), EventIn, responses={201: EventData}),
    Operation("GET", "/events", "List events", query=PageQuery, responses={200: EventPage}),
    Operation("GET", "/events/{event_id}", "An event with its blackouts", responses={200: EventData}),
    Operation("PATCH", "/events/{event_id}", "Change an event", (ADMIN,), EventPatch, responses={200: EventData}),
    Operation(
        "POST",
        "/events/{event_id}/blackouts",
        "Add a blackout (daily or one-off)",
        (ADMIN,),
        BlackoutIn,
        responses={201: Blackout},
    ),
    Operation("DELETE", "/events/{event_id}/blackouts/{blackout_id}", "Remove a blackout", (ADMIN,), responses={204: None}),
    Operation(
        "POST",
        "/shifts",
        "Add a shift (professionals their own; admins anyone's)",
        (PRO, ADMIN),
        ShiftIn,
        responses={201: ShiftOut},
    ),
    Operation("GET", "/shifts", "Shifts (professionals: their own)", (PRO, ADMIN), query=ShiftQuery, responses={200: ShiftPage}),
    Operation("GET", "/shifts/{shift_id}", "A shift", (PRO, ADMIN), responses={200: ShiftOut}),
    Operation("PATCH", "/shifts/{shift_id}", "Change a shift", (PRO, ADMIN), ShiftPatch, responses={200: ShiftOut}),
    Operation("DELETE", "/shifts/{shift_id}", "Cancel a shift", (PRO, ADMIN), responses={200: ShiftOut}),
]
