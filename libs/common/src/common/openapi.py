"""OpenAPI 3.1 from the endpoints' declarations (``common.endpoints``): each service serves its
public endpoints' document; the gateway merges every service's document under its public prefix."""

from http import HTTPStatus
from typing import Any

from pydantic import AnyUrl, BaseModel, ConfigDict, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode

from common.endpoints import Document, Endpoint
from common.problems import VISIBLE_ASCII


class ProblemDocument(BaseModel):
    """RFC 9457: every error answer."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"required": ["type", "title", "status", "code"]})

    type: AnyUrl  # https://appointments.example/problems/<code>
    title: str
    status: int
    code: str  # stable: what a client acts on
    detail: str | None = None  # left out when there is nothing to add to the title
    instance: str | None = None  # the path asked for; left out by the public entry's own refusals


def _path_schema(name: str, regex: str | None) -> dict:
    if name.endswith("_id"):
        return {"type": "string", "format": "uuid"}
    return {"type": "string", "pattern": f"^{regex}$"} if regex else {"type": "string"}


def _links(created_by: Endpoint, operations: list[Endpoint]) -> dict[str, dict]:
    """OpenAPI links from what a POST creates (``/events`` makes an ``event_id``) to every operation
    of the same document that takes that id, so a stateful test follows them to real rows."""
    made = created_by.path.rstrip("/").rsplit("/", 1)[-1].removesuffix("s") + "_id"
    links = {}
    for op in operations:
        if made not in op.path_ids or not set(op.path_ids) - {made} <= set(created_by.path_ids):
            continue
        parameters = {name: f"$request.path.{name}" for name in op.path_ids if name != made} | {made: "$response.body#/id"}
        links[op.operation_id] = {"operationId": op.operation_id, "parameters": parameters}
    return links


class _Generator(GenerateJsonSchema):
    """Pydantic's JSON Schema, but an answer's every field is required: our answers always carry
    each field (null where it has no value), and a client generated from the document should not
    have to check for one that is missing."""

    def field_is_required(self, field: Any, total: bool) -> bool:
        if self.mode == "serialization":
            return not field.get("serialization_exclude")
        return super().field_is_required(field, total)


def _schemas(operations: list[Endpoint]) -> tuple[dict[tuple[Any, str], dict], dict[str, Any]]:
    """Every type the operations use, as requests (validation) or answers (serialization): a $ref
    (or schema) for each, and the components they use. One call, so that a model used both ways
    gets two names (``-Input``, ``-Output``) where its two schemas differ, and one where they do not."""
    wanted: list[tuple[Any, JsonSchemaMode]] = [(ProblemDocument, "serialization")]
    for op in operations:
        if op.body is not None:
            wanted.append((op.body, "validation"))
        wanted += [(m, "serialization") for m in op.responses.values() if m is not None and not isinstance(m, Document)]
    wanted = list(dict.fromkeys(wanted))
    refs, definitions = TypeAdapter.json_schemas(
        [(key, key[1], TypeAdapter(key[0])) for key in wanted],
        ref_template="#/components/schemas/{model}",
        schema_generator=_Generator,
    )
    return {key: schema for (key, _), schema in refs.items()}, definitions.get("$defs", {})


def _query_parameters(model: type[BaseModel]) -> list[dict]:
    """A query model's fields as parameters; an optional one is absent, never null, in a query."""
    schema = model.model_json_schema()
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        branches = [b for b in prop.get("anyOf", []) if b.get("type") != "null"]
        if len(branches) == 1:
            prop = {k: v for k, v in prop.items() if k != "anyOf" and not (k == "default" and v is None)} | branches[0]
        prop.pop("title", None)
        parameters.append({"name": name, "in": "query", "required": name in schema.get("required", []), "schema": prop})
    return parameters


def _security(op: Endpoint) -> list[dict]:
    if op.roles:
        return [{"bearer": []}]
    return [{}, {"bearer": []}] if op.optional_sign_in else []


HEADER_VALUE = {"type": "string", "pattern": f"^{VISIBLE_ASCII}$"}  # what common.problems.header_value accepts
RESPONSE_HEADERS = {
    "ETag": {
        "description": "The answer's tag: send it back as If-None-Match to be answered 304 while it holds",
        "schema": {"type": "string"},
    },
    "Retry-After": {"description": "Seconds to wait before trying again", "schema": {"type": "integer", "minimum": 0}},
}


def _response(status: int, model: Any, op: Endpoint, refs: dict, problem: dict) -> dict:
    response: dict[str, Any] = {"description": HTTPStatus(status).phrase}
    if isinstance(model, Document):
        response["content"] = {model.media_type: {"schema": {"type": "string"}}}
    elif model is problem:
        response["content"] = {"application/problem+json": {"schema": problem}}
    elif op.streamed and status == 200:
        # OpenAPI 3.1 has no schema for the items of a stream (3.2's itemSchema): the events are
        # described in words, and a generated client reads the stream as text.
        described = (
            f"Server-sent events: each `event: availability`, its `id` the answer's ETag, its data a "
            f"{model.__name__} as JSON ({refs[(model, 'serialization')]['$ref']})"
        )
        response["content"] = {"text/event-stream": {"schema": {"type": "string", "description": described}}}
    elif model is not None:
        response["content"] = {"application/json": {"schema": refs[(model, "serialization")]}}
    conditional = 304 in op.responses and status in (200, 304)
    headers = {"ETag": RESPONSE_HEADERS["ETag"]} if conditional else {}
    if status in (429, 503):
        headers["Retry-After"] = RESPONSE_HEADERS["Retry-After"]
    if headers:
        response["headers"] = headers
    return response


def document(title: str, operations: list[Endpoint], prefix: str = "") -> dict:
    refs, components = _schemas(operations)
    problem = refs[(ProblemDocument, "serialization")]
    paths: dict[str, dict] = {}
    for op in operations:
        entry: dict[str, Any] = {
            "summary": op.summary,
            "operationId": op.operation_id,
            "tags": [title],  # the service's: a generated client groups its operations by it
            "security": _security(op),
        }
        if op.roles:
            entry["description"] = "Allowed to: " + ", ".join(op.roles) + "."
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": _path_schema(name, regex)}
            for name, regex in op.path_parameters.items()
        ]
        if op.query is not None:
            parameters += _query_parameters(op.query)
        parameters += [
            {"name": h.name, "in": "header", "required": False, "schema": HEADER_VALUE | {"maxLength": h.max_length}}
            for h in op.headers
        ]
        if parameters:
            entry["parameters"] = parameters
        if op.body is not None:
            entry["requestBody"] = {"required": True, "content": {"application/json": {"schema": refs[(op.body, "validation")]}}}
        responses = {str(status): _response(status, model, op, refs, problem) for status, model in op.responses.items()}
        if 201 in op.responses and (links := _links(op, operations)):
            responses["201"]["links"] = links
        for status in (*op.errors, 413, 415, 429, 503):
            responses.setdefault(str(status), _response(status, problem, op, refs, problem))
        entry["responses"] = responses
        paths.setdefault(prefix + op.documented_path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1.0.0"},
        "servers": [{"url": "/"}],
        "tags": [{"name": title}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


def merge(title: str, documents: list[dict], prefix: str) -> dict:
    """One document for the public API: every service's paths under ``prefix``."""
    merged = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1.0.0"},
        "servers": [{"url": "/"}],
        "tags": [],
        "paths": {},
        "components": {"schemas": {}},
    }
    for doc in documents:
        merged["tags"] += doc.get("tags", [])
        for path, item in doc["paths"].items():
            merged["paths"].setdefault(prefix + path, {}).update(item)
        merged["components"]["schemas"].update(doc["components"]["schemas"])
        merged["components"].setdefault("securitySchemes", {}).update(doc["components"].get("securitySchemes", {}))
    return merged
