"""One declaration per endpoint: its route, who may call it, the models its request is validated
with and its OpenAPI operation all come from one decorator, so they cannot disagree.

    api = Endpoints()

    @api.post("/bookings", "Book a slot", roles=(Role.CLIENT,), body=BookingIn, responses={201: BookingOut})
    async def book(request: web.Request, call: Call[BookingIn, None]) -> web.Response: ...

The wrapper checks the caller's role (401 without a token, 403 with another role), the declared
headers (400), the path's ids (404: a malformed id names nothing), the query and the body (4xx
problem documents), in that order, and hands the handler what it validated.
"""

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Generic, TypeVar
from uuid import UUID

from aiohttp import web
from pydantic import BaseModel

from common.auth import Identity, current_identity, require_identity
from common.errors import not_found
from common.problems import header_value, parse_body, parse_query
from common.roles import Role

PATH_PARAMETER = re.compile(r"\{(?P<name>\w+)(?::(?P<regex>[^{}]+))?\}")

B = TypeVar("B")
Q = TypeVar("Q")


@dataclass(frozen=True)
class Header:
    """A request header an endpoint reads; optional, 1 to ``max_length`` visible ASCII characters
    (``common.problems.header_value``)."""

    name: str
    max_length: int = 200


@dataclass(frozen=True)
class Document:
    """A response body that is not JSON (declared in ``responses`` instead of a model): a
    text/calendar file, say."""

    media_type: str


@dataclass(slots=True)
class Call(Generic[B, Q]):
    """What the wrapper validated: who calls, the body, the query, the path's ids and the headers."""

    who: Identity | None
    body: B
    query: Q
    ids: dict[str, UUID]
    headers: dict[str, str | None]

    @property
    def caller(self) -> Identity:
        """The signed-in caller (an endpoint with roles always has one)."""
        assert self.who is not None
        return self.who


Handler = Callable[[web.Request, Call], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # as the service serves it (without the prefix), e.g. /bookings/{booking_id}; {name:regex} restricts a segment
    summary: str
    handler: Handler
    roles: tuple[Role, ...] = ()  # who may call it; empty: anyone, signed in or not
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    responses: dict[int, Any] = field(default_factory=dict)  # status -> model (None: no body)
    headers: tuple[Header, ...] = ()
    streamed: bool = False  # its 200 is a stream of server-sent events, each one the 200 model
    optional_sign_in: bool = False  # without roles: a token, when one is sent, changes the answer (the reader's zone)
    errors: tuple[int, ...] = (400, 401, 403, 404, 409, 422)

    @cached_property
    def operation_id(self) -> str:
        """The OpenAPI operationId: the handler's name in camelCase (``book_slot``: ``bookSlot``)."""
        first, *rest = self.handler.__name__.split("_")
        return first + "".join(word.capitalize() for word in rest)

    @cached_property
    def path_parameters(self) -> dict[str, str | None]:
        """Each ``{name}`` or ``{name:regex}`` of the path, with its regex (None: any segment)."""
        return {m["name"]: m["regex"] for m in PATH_PARAMETER.finditer(self.path)}

    @cached_property
    def path_ids(self) -> tuple[str, ...]:
        """The path's ids (``{..._id}``): UUIDs, a malformed one names nothing (404)."""
        return tuple(name for name in self.path_parameters if name.endswith("_id"))

    @cached_property
    def documented_path(self) -> str:
        """The path as OpenAPI writes it: ``{name}`` without its regex."""
        return PATH_PARAMETER.sub(lambda m: "{" + m["name"] + "}", self.path)

    async def serve(self, request: web.Request) -> web.StreamResponse:
        who = require_identity(request, *self.roles) if self.roles else current_identity(request)
        headers = {header.name: header_value(request, header.name, header.max_length) for header in self.headers}
        ids = {}
        for name in self.path_ids:
            try:
                ids[name] = UUID(request.match_info[name])
            except ValueError:
                raise not_found(name.removesuffix("_id")) from None
        query = parse_query(request, self.query) if self.query is not None else None
        body = await parse_body(request, self.body) if self.body is not None else None
        return await self.handler(request, Call(who, body, query, ids, headers))


class Endpoints:
    """A service's endpoints: ``routes()`` for aiohttp, ``public()`` for its OpenAPI document."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix  # where the service mounts them (the gateway serves its own under /api/v1)
        self._declared: list[Endpoint] = []

    def _declare(self, method: str, path: str, summary: str, **details: Any) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self._declared.append(Endpoint(method, path, summary, handler, **details))
            return handler

        return register

    def get(self, path: str, summary: str, **details: Any) -> Callable[[Handler], Handler]:
        return self._declare("GET", path, summary, **details)

    def post(self, path: str, summary: str, **details: Any) -> Callable[[Handler], Handler]:
        return self._declare("POST", path, summary, **details)

    def put(self, path: str, summary: str, **details: Any) -> Callable[[Handler], Handler]:
        return self._declare("PUT", path, summary, **details)

    def patch(self, path: str, summary: str, **details: Any) -> Callable[[Handler], Handler]:
        return self._declare("PATCH", path, summary, **details)

    def delete(self, path: str, summary: str, **details: Any) -> Callable[[Handler], Handler]:
        return self._declare("DELETE", path, summary, **details)

    def routes(self) -> list[web.RouteDef]:
        return [web.route(e.method, self.prefix + e.path, e.serve) for e in self._declared]

    def public(self) -> list[Endpoint]:
        """Every endpoint: all of them are public (no route between services exists)."""
        return list(self._declared)
