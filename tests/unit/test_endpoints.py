"""One declaration per endpoint: the route, the role guard, the validation and the OpenAPI operation
all follow from it (an aiohttp app in memory, no servers)."""

import uuid

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel, ConfigDict

from common.auth import Identity, SignerKeys, TokenSigner, new_private_key_pem
from common.endpoints import Call, Endpoints, Header
from common.openapi import document
from common.roles import Role
from common.settings import ServiceSettings
from common.web import json_response, service_app

SETTINGS = ServiceSettings()
SIGNER = TokenSigner(new_private_key_pem(), SETTINGS.jwt_issuer, SETTINGS.jwt_audience, 600)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str


class NoteQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    loud: bool = False


api = Endpoints("/v1")


@api.post(
    "/notes/{note_id}",
    "Write a note",
    roles=(Role.CLIENT,),
    body=NoteIn,
    query=NoteQuery,
    responses={201: NoteIn},
    headers=(Header("Idempotency-Key", max_length=8),),
)
async def write(request: web.Request, call: Call[NoteIn, NoteQuery]) -> web.Response:
    text = call.body.text.upper() if call.query.loud else call.body.text
    return json_response(
        {"text": text, "by": str(call.caller.id), "note": str(call.ids["note_id"]), "key": call.headers["Idempotency-Key"]},
        status=201,
    )


@api.get("/notes", "Anyone may read")
async def read(request: web.Request, call: Call[None, None]) -> web.Response:
    return json_response({"signed_in": call.who is not None})


@api.get("/notes/all", "Admins only", roles=(Role.ADMIN,))
async def everyone(request: web.Request, call: Call[None, None]) -> web.Response:
    return json_response({})


def token(role: Role) -> dict[str, str]:
    who = Identity(id=uuid.uuid4(), role=role, name=role.value)
    return {"Authorization": f"Bearer {SIGNER.issue(who)}"}


@pytest.fixture
async def client():
    app = service_app(SETTINGS, SignerKeys(SIGNER))
    app.add_routes(api.routes())
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_the_declared_roles_guard_the_route(client):
    path = f"/v1/notes/{uuid.uuid4()}"
    anonymous = await client.post(path, json={"text": "hi"})
    assert (anonymous.status, (await anonymous.json())["code"]) == (401, "unauthorized")
    professional = await client.post(path, json={"text": "hi"}, headers=token(Role.PROFESSIONAL))
    assert (professional.status, (await professional.json())["code"]) == (403, "forbidden")
    assert (await client.get("/v1/notes/all", headers=token(Role.CLIENT))).status == 403
    assert (await client.get("/v1/notes/all", headers=token(Role.ADMIN))).status == 200
    assert (await client.get("/v1/notes")).status == 200
    assert await (await client.get("/v1/notes", headers=token(Role.CLIENT))).json() == {"signed_in": True}


async def test_the_declared_models_headers_and_ids_are_what_the_handler_gets(client):
    note = uuid.uuid4()
    answer = await client.post(
        f"/v1/notes/{note}?loud=true", json={"text": "hi"}, headers={**token(Role.CLIENT), "Idempotency-Key": "k1"}
    )
    assert answer.status == 201
    assert await answer.json() | {"by": None} == {"text": "HI", "by": None, "note": str(note), "key": "k1"}


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "code"),
    [
        ("/v1/notes/not-a-uuid", {"text": "hi"}, {}, 404, "not_found"),
        ("/v1/notes/{id}", {"text": "hi"}, {"Idempotency-Key": "x" * 9}, 400, "invalid_idempotency_key"),
        ("/v1/notes/{id}?shout=1", {"text": "hi"}, {}, 422, "validation_failed"),
        ("/v1/notes/{id}", {"text": "hi", "extra": 1}, {}, 422, "validation_failed"),
    ],
)
async def test_what_the_declaration_refuses_is_a_problem_document(client, path, body, headers, status, code):
    answer = await client.post(path.format(id=uuid.uuid4()), json=body, headers={**token(Role.CLIENT), **headers})
    assert answer.content_type == "application/problem+json"
    assert (answer.status, (await answer.json())["code"]) == (status, code)


def test_the_document_is_built_from_the_same_declarations():
    doc = document("notes", api.public())
    assert set(doc["paths"]) == {"/notes/{note_id}", "/notes", "/notes/all"}
    operation = doc["paths"]["/notes/{note_id}"]["post"]
    assert operation["description"] == "Allowed to: client."
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/NoteIn"}
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert parameters["note_id"]["in"] == "path" and parameters["loud"]["in"] == "query"
    assert parameters["Idempotency-Key"]["schema"]["maxLength"] == 8
    assert operation["security"] == [{"bearer": []}] and operation["operationId"] == "write"
    assert doc["paths"]["/notes"]["get"]["security"] == []  # anyone, and no token changes the answer
