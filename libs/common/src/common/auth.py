"""JWT: the gateway issues tokens; every service verifies them itself and trusts nothing else."""

import time
from typing import Self
from uuid import UUID

import jwt
from aiohttp import web
from pydantic import BaseModel, ValidationError

from common.problems import Problem
from common.roles import Role
from common.settings import ServiceSettings

ALGORITHM = "HS256"


class Identity(BaseModel):
    """Who is calling, as the token says."""

    id: UUID
    role: Role
    name: str
    email: str | None = None
    timezone: str = "UTC"

    @classmethod
    def from_claims(cls, claims: dict) -> Self:
        return cls(
            id=claims["sub"],
            role=claims["role"],
            name=claims["name"],
            email=claims.get("email"),
            timezone=claims.get("tz", "UTC"),
        )


VERIFIED_TOKENS_KEPT = 50_000


class TokenCodec:
    def __init__(self, settings: ServiceSettings) -> None:
        self._secret = settings.jwt_secret.get_secret_value()
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self.ttl_seconds = settings.jwt_ttl_seconds
        self._verified: dict[str, tuple[Identity, int]] = {}  # token -> (identity, exp)

    def issue(self, who: Identity) -> str:
        now = int(time.time())
        claims = {
            "sub": str(who.id),
            "role": who.role.value,
            "name": who.name,
            "email": who.email,
            "tz": who.timezone,
            "iss": self._issuer,
            "aud": self._audience,
            "iat": now,
            "exp": now + self.ttl_seconds,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Identity:
        """The token's identity. A client sends the same token with every request until it expires,
        so a verified token is remembered until its ``exp``: checking the signature again costs
        more than the rest of a small request's own work (profiled)."""
        if (known := self._verified.get(token)) and known[1] > time.time():
            return known[0]
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],  # pinned: "none" and every other algorithm are refused
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
            identity = Identity.from_claims(claims)
        except (jwt.PyJWTError, ValidationError, KeyError) as exc:
            raise unauthorized("The access token is invalid or expired.") from exc
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            self._verified.pop(next(iter(self._verified)))  # the oldest
        self._verified[token] = (identity, int(claims["exp"]))
        return identity


def unauthorized(detail: str) -> Problem:
    problem = Problem(401, "unauthorized", "Not signed in", detail)
    problem.headers = {"WWW-Authenticate": 'Bearer realm="appointments"'}
    return problem


TOKEN_CODEC = web.AppKey("token_codec", TokenCodec)
_IDENTITY = web.RequestKey("identity", Identity | None)


@web.middleware
async def identity_middleware(request: web.Request, handler):
    """Attach the caller's identity when a bearer token is presented; reject a bad token."""
    header = request.headers.get("Authorization")
    identity = None
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise unauthorized("Use 'Authorization: Bearer <token>'.")
        identity = request.app[TOKEN_CODEC].verify(token.strip())
    request[_IDENTITY] = identity
    return await handler(request)


def current_identity(request: web.Request) -> Identity | None:
    return request.get(_IDENTITY)


def require_identity(request: web.Request, *roles: Role) -> Identity:
    identity = current_identity(request)
    if identity is None:
        raise unauthorized("Sign in first.")
    if roles and identity.role not in roles:
        raise Problem(403, "forbidden", "Forbidden", f"This needs the role {' or '.join(r.value for r in roles)}.")
    return identity
