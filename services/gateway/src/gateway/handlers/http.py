"""The gateway's own routes: accounts and profiles. Everything else is proxied (see proxy.py)."""

from aiohttp import web

from common.auth import Role, require_identity
from common.errors import Problem
from common.openapi import Operation
from common.problems import parse_body, parse_query
from common.web import json_response, page
from gateway.api import (
    LoginIn,
    PageQuery,
    ProfessionalIn,
    ProfessionalOut,
    ProfessionalPage,
    ProfileOut,
    ProfilePatch,
    RegisterIn,
    TokenOut,
    UserOut,
)
from gateway.app_keys import ACCOUNTS, LIMITER, PUBLIC_API, SETTINGS

routes = web.RouteTableDef()
PREFIX = "/api/v1"


def professional_out(professional) -> dict:
    return ProfessionalOut.model_validate(professional, from_attributes=True).model_dump(mode="json")


def user_out(row) -> dict:
    return UserOut.model_validate(row, from_attributes=True).model_dump(mode="json")


@routes.post(f"{PREFIX}/auth/register")
async def register(request: web.Request) -> web.Response:
    spec = await parse_body(request, RegisterIn)
    who = await request.app[ACCOUNTS].register(spec)
    return json_response(who.model_dump(mode="json"), status=201)


@routes.post(f"{PREFIX}/auth/login")
async def login(request: web.Request) -> web.Response:
    spec = await parse_body(request, LoginIn)
    limiter, per_minute, account = request.app[LIMITER], request.app[SETTINGS].failed_sign_ins_per_minute, spec.email.lower()
    await limiter.check("sign-in-failures", account, per_minute, "failed sign-ins")
    try:
        return json_response(await request.app[ACCOUNTS].login(spec))
    except Problem as problem:
        if problem.status == 401:
            await limiter.hit("sign-in-failures", account, per_minute + 1, "failed sign-ins")
        raise


@routes.get(f"{PREFIX}/me")
async def me(request: web.Request) -> web.Response:
    who = require_identity(request, Role.CLIENT, Role.PROFESSIONAL, Role.ADMIN)
    return json_response(user_out(await request.app[ACCOUNTS].profile(who.id)))


@routes.patch(f"{PREFIX}/me")
async def update_me(request: web.Request) -> web.Response:
    who = require_identity(request, Role.CLIENT, Role.PROFESSIONAL, Role.ADMIN)
    patch = await parse_body(request, ProfilePatch)
    row = await request.app[ACCOUNTS].update_profile(who.id, patch)
    # A token carries the profile it was issued with; hand back one that carries the change.
    return json_response(user_out(row) | request.app[ACCOUNTS].token_for(row))


@routes.post(f"{PREFIX}/professionals")
async def create_professional(request: web.Request) -> web.Response:
    require_identity(request, Role.ADMIN)
    spec = await parse_body(request, ProfessionalIn)
    who = await request.app[ACCOUNTS].register(spec, Role.PROFESSIONAL)
    return json_response(professional_out(who), status=201)


@routes.get(f"{PREFIX}/professionals")
async def list_professionals(request: web.Request) -> web.Response:
    require_identity(request, Role.ADMIN)
    query = parse_query(request, PageQuery)
    rows = await request.app[ACCOUNTS].professionals(query.cursor, query.limit)
    return json_response(page([professional_out(r) for r in rows], query.limit))


OPERATIONS = [
    Operation(
        "POST", "/auth/register", "Open a client account", body=RegisterIn, responses={201: UserOut}, errors=(400, 409, 422)
    ),
    Operation("POST", "/auth/login", "Sign in: a bearer token", body=LoginIn, responses={200: TokenOut}, errors=(400, 401, 422)),
    Operation("GET", "/me", "Your profile", ("client", "professional", "admin"), responses={200: UserOut}),
    Operation(
        "PATCH",
        "/me",
        "Change your name or timezone",
        ("client", "professional", "admin"),
        ProfilePatch,
        responses={200: ProfileOut},
    ),
    Operation(
        "POST", "/professionals", "Create a professional's account", ("admin",), ProfessionalIn, responses={201: ProfessionalOut}
    ),
    Operation("GET", "/professionals", "List professionals", ("admin",), query=PageQuery, responses={200: ProfessionalPage}),
    Operation("GET", "/openapi.json", "This document", responses={200: None}, errors=()),
]


@routes.get(f"{PREFIX}/openapi.json")
async def openapi_document(request: web.Request) -> web.Response:
    """The public API: the gateway's own routes and every service's, generated from their models."""
    return json_response(await request.app[PUBLIC_API].document())
