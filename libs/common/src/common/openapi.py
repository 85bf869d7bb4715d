"""OpenAPI 3.1 from the endpoints' declarations (``common.endpoints``): each service serves its
public endpoints' document; the gateway merges every service's document under its public prefix."""

from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter
from pydantic.json_schema import models_json_schema

from common.endpoints import Document, Endpoint


class ProblemDocument(BaseModel):
    """RFC 9457: every error answer."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    code: str
    detail: str | None = None
    instance: str | None = None


def _schema(model: Any, components: dict) -> dict:
    """A $ref to ``model`` in components (adding it and what it uses)."""
    if isinstance(model, type) and issubclass(model, BaseModel):
        _, schemas = models_json_schema([(model, "serialization")], ref_template="#/components/schemas/{model}")
        components.update(schemas.get("$defs", {}))
        return {"$ref": f"#/components/schemas/{model.__name__}"}
    schema = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
    components.update(schema.pop("$defs", {}))
    return schema


def _path_schema(name: str, regex: str | None) -> dict:
    if name.endswith("_id"):
        return {"type": "string", "format": "uuid"}
    return {"type": "string", "pattern": f"^{regex}$"} if regex else {"type": "string"}


def _operation_id(op: Endpoint) -> str:
    return f"{op.method.lower()}{op.path}".replace("/", "_")


def _links(created_by: Endpoint, operations: list[Endpoint]) -> dict[str, dict]:
    """OpenAPI links from what a POST creates (``/events`` makes an ``event_id``) to every operation
    of the same document that takes that id, so a stateful test follows them to real rows."""
    made = created_by.path.rstrip("/").rsplit("/", 1)[-1].removesuffix("s") + "_id"
    links = {}
    for op in operations:
        if made not in op.path_ids or not set(op.path_ids) - {made} <= set(created_by.path_ids):
            continue
        parameters = {name: f"$request.path.{name}" for name in op.path_ids if name != made} | {made: "$response.body#/id"}
        name = _operation_id(op).replace("{", "").replace("}", "")  # a link's name: letters, digits, . - _
        links[name] = {"operationId": _operation_id(op), "parameters": parameters}
    return links


def document(title: str, operations: list[Endpoint], prefix: str = "") -> dict:
    components: dict[str, Any] = {}
    paths: dict[str, dict] = {}
    problem = _schema(ProblemDocument, components)
    for op in operations:
        entry: dict[str, Any] = {"summary": op.summary, "operationId": _operation_id(op)}
        if op.roles:
            entry["security"] = [{"bearer": []}]
            entry["description"] = "Allowed to: " + ", ".join(op.roles) + "."
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": _path_schema(name, regex)}
            for name, regex in op.path_parameters.items()
        ]
        if op.query is not None:
            query_schema = op.query.model_json_schema()
            for name, prop in query_schema.get("properties", {}).items():
                parameters.append(
                    {"name": name, "in": "query", "required": name in query_schema.get("required", []), "schema": prop}
                )
        parameters += [
            {
                "name": h.name,
                "in": "header",
                "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": h.max_length},
            }
            for h in op.headers
        ]
        if parameters:
            entry["parameters"] = parameters
        if op.body is not None:
            entry["requestBody"] = {"required": True, "content": {"application/json": {"schema": _schema(op.body, components)}}}
        responses: dict[str, Any] = {}
        for status, model in op.responses.items():
            responses[str(status)] = {"description": "OK" if status < 300 else str(status)}
            if isinstance(model, Document):
                responses[str(status)]["content"] = {model.media_type: {"schema": {"type": "string"}}}
            elif model is not None:
                media_type = "text/event-stream" if op.streamed and status == 200 else "application/json"
                responses[str(status)]["content"] = {media_type: {"schema": _schema(model, components)}}
            if status == 201 and (links := _links(op, operations)):
                responses[str(status)]["links"] = links
        for status in (*op.errors, 413, 415, 429, 503):
            responses.setdefault(
                str(status), {"description": "problem", "content": {"application/problem+json": {"schema": problem}}}
            )
        entry["responses"] = responses
        paths.setdefault(prefix + op.documented_path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1.0.0"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


def merge(title: str, documents: list[dict], prefix: str) -> dict:
    """One document for the public API: every service's paths under ``prefix``."""
    merged = {"openapi": "3.1.0", "info": {"title": title, "version": "1.0.0"}, "paths": {}, "components": {"schemas": {}}}
    for doc in documents:
        for path, item in doc["paths"].items():
            merged["paths"].setdefault(prefix + path, {}).update(item)
        merged["components"]["schemas"].update(doc["components"]["schemas"])
        merged["components"].setdefault("securitySchemes", {}).update(doc["components"].get("securitySchemes", {}))
    return merged
