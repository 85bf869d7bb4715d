"""The gateway's own endpoints, each declared once: accounts, profiles and the public OpenAPI
document. The edge routes everything else to the service that owns it."""

from aiohttp import web

from common.endpoints import Call, Endpoints
from common.roles import PEOPLE, Role
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
from gateway.app_keys import ACCOUNTS, LIMITER, PUBLIC_API, SETTINGS, SIGNER

api = Endpoints("/api/v1")


def professional_out(professional) -> dict:
    return ProfessionalOut.model_validate(professional, from_attributes=True).model_dump(mode="json")


def user_out(row) -> dict:
    return UserOut.model_validate(row, from_attributes=True).model_dump(mode="json")


def client_address(request: web.Request) -> str:
    """The caller's address as the public entry saw it (it replaces X-Forwarded-For, never appends);
    the peer's own for a call that did not come through the entry."""
    forwarded = request.headers.get("X-Forwarded-For", "").rpartition(",")[2].strip()
    return forwarded or request.remote or "unknown"


@api.post("/auth/register", "Open a client account", body=RegisterIn, responses={201: UserOut}, errors=(400, 409, 422, 429))
async def register(request: web.Request, call: Call[RegisterIn, None]) -> web.Response:
    limit = request.app[SETTINGS].registrations_per_address_per_hour
    await request.app[LIMITER].take("register", client_address(request), {"any": limit}, 3600, "registrations")
    who = await request.app[ACCOUNTS].register(call.body)
    return json_response(who.model_dump(mode="json"), status=201)


@api.post("/auth/login", "Sign in: a bearer token", body=LoginIn, responses={200: TokenOut}, errors=(400, 401, 422, 429))
async def login(request: web.Request, call: Call[LoginIn, None]) -> web.Response:
    """Every attempt is counted before the password is checked (so a burst cannot pass the limit),
    and given back when it succeeds: what is limited is failures, per account and address, and per
    address whatever the account."""
    settings = request.app[SETTINGS]
    limits = {f"account:{call.body.email.lower()}": settings.failed_sign_ins_per_minute}
    limits["any account"] = settings.failed_sign_ins_per_address_per_minute
    counted = await request.app[LIMITER].take("sign-in", client_address(request), limits, 60, "failed sign-ins")
    token = await request.app[ACCOUNTS].login(call.body)  # a 401 stays counted
    await request.app[LIMITER].give_back(counted)
    return json_response(token)


@api.get("/me", "Your profile", roles=PEOPLE, responses={200: UserOut})
async def get_me(request: web.Request, call: Call[None, None]) -> web.Response:
    return json_response(user_out(await request.app[ACCOUNTS].profile(call.caller.id)))


@api.patch("/me", "Change your name or timezone", roles=PEOPLE, body=ProfilePatch, responses={200: ProfileOut})
async def update_me(request: web.Request, call: Call[ProfilePatch, None]) -> web.Response:
    row = await request.app[ACCOUNTS].update_profile(call.caller.id, call.body)
    # A token carries the profile it was issued with; hand back one that carries the change.
    return json_response(user_out(row) | request.app[ACCOUNTS].token_for(row))


@api.post(
    "/professionals",
    "Create a professional's account",
    roles=(Role.ADMIN,),
    body=ProfessionalIn,
    responses={201: ProfessionalOut},
)
async def create_professional(request: web.Request, call: Call[ProfessionalIn, None]) -> web.Response:
    who = await request.app[ACCOUNTS].register(call.body, Role.PROFESSIONAL)
    return json_response(professional_out(who), status=201)


@api.get("/professionals", "List professionals", roles=(Role.ADMIN,), query=PageQuery, responses={200: ProfessionalPage})
async def list_professionals(request: web.Request, call: Call[None, PageQuery]) -> web.Response:
    rows = await request.app[ACCOUNTS].professionals(call.query.cursor, call.query.limit)
    return json_response(page([professional_out(r) for r in rows], call.query.limit))


@api.get("/openapi.json", "This document", responses={200: None}, errors=())
async def get_openapi_document(request: web.Request, call: Call[None, None]) -> web.Response:
    """The public API: the gateway's own routes and every service's, generated from their models."""
    return json_response(await request.app[PUBLIC_API].document())


async def jwks(request: web.Request) -> web.Response:
    """``GET /.well-known/jwks.json`` (at the root, as SPEC §4 has it): the public keys every token
    is verified with. Kept by verifiers for a few minutes, so a rotation publishes the next key a
    while before signing with it (README, "Keys")."""
    response = json_response(request.app[SIGNER].jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
