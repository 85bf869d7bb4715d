"""RFC 9457 problem documents: domain errors raise ``Problem``; one middleware answers them."""

import json
import logging
import re
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from common.errors import Problem, not_found, try_again
from common.unavailable import is_unavailable

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"

M = TypeVar("M", bound=BaseModel)


def problem_response(problem: Problem, instance: str | None = None) -> web.Response:
    return web.Response(
        status=problem.status,
        text=json.dumps(problem.to_dict(instance), default=str),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=problem.headers,
    )


def _validation_problem(exc: ValidationError, where: str) -> Problem:
    errors = [
        {"location": [where, *map(str, e["loc"])], "message": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_context=False, include_input=False)
    ]
    return Problem(422, "validation_failed", "Request is not valid", f"The {where} has {len(errors)} error(s).", errors=errors)


async def parse_body(request: web.Request, model: type[M]) -> M:
    """Validate a JSON body against ``model``; anything else is a 4xx problem."""
    if request.content_type != "application/json":
        raise Problem(415, "unsupported_media_type", "Unsupported media type", "Send the body as application/json.")
    try:
        raw = await request.read()
        return model.model_validate_json(raw)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise Problem(400, "malformed_json", "Malformed JSON", "The body is not valid JSON.") from exc
        raise _validation_problem(exc, "body") from exc


def parse_query(request: web.Request, model: type[M]) -> M:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise _validation_problem(exc, "query") from exc


def header_value(request: web.Request, name: str, max_length: int = 200) -> str | None:
    """A request header as text, or None when absent. A value that is not 1 to ``max_length``
    visible ASCII characters is a 400 ``invalid_<name>``: every header we read is a token, and a
    byte that is not ASCII (aiohttp hands a byte that is not UTF-8 on as a lone surrogate, which
    no encoder downstream accepts) must be refused here, not fail later as a 500."""
    value = request.headers.get(name)
    if value is not None and not (1 <= len(value) <= max_length and re.fullmatch(VISIBLE_ASCII, value)):
        code = "invalid_" + name.lower().replace("-", "_")
        raise Problem(400, code, f"Invalid {name}", f"Use 1 to {max_length} visible ASCII characters.")
    return value


VISIBLE_ASCII = r"[\t\x20-\x7e]+"  # what a header value we read may hold (the OpenAPI document says the same)


def parse_path_uuid(request: web.Request, name: str, what: str):
    from uuid import UUID

    try:
        return UUID(request.match_info[name])
    except ValueError:
        raise not_found(what) from None


@web.middleware
async def problem_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except Problem as problem:
        return problem_response(problem, request.path)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(exc.status, "http_error")
        problem = Problem(
            exc.status, code, exc.reason, exc.text if exc.text and not exc.text.startswith(str(exc.status)) else None
        )
        problem.headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        return problem_response(problem, request.path)
    except Exception as exc:
        if is_unavailable(exc):
            # A server we depend on is down or restarting: nothing of ours is broken, and the
            # client's retry (with its Idempotency-Key, where it has one) is the right thing to do.
            log.warning("%s %s: a server we depend on is unavailable (%r)", request.method, request.path, exc)
            return problem_response(try_again("A server this needs is not answering; try again in a moment."), request.path)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(
            Problem(500, "internal_error", "Internal error", "Something went wrong on our side."), request.path
        )
