"""Tokens (SPEC §4). The gateway signs users' tokens with a private key only it holds (EdDSA on
Ed25519); every service verifies them with the public keys the gateway publishes at
``/.well-known/jwks.json``, so no service can mint a user's token. No service calls another with
an identity of its own: nothing between services goes but integration events.

Keys carry a ``kid`` (their RFC 7638 thumbprint). Rotation: publish the next key beside the
current one (``JWT_EXTRA_PUBLIC_KEYS``), sign with it (``JWT_SIGNING_KEY``) keeping the old one
published, then retire the old one once the last token it signed has expired (README, "Keys").
"""

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections.abc import Iterable
from typing import Protocol, Self
from uuid import UUID

import aiohttp
import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ValidationError

from common.errors import try_again
from common.problems import Problem, header_value
from common.roles import Role

log = logging.getLogger(__name__)

ALGORITHM = "EdDSA"
REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud"]


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


# -- keys -------------------------------------------------------------------------------------


def _pem(text: str) -> bytes:
    """A PEM as configured: its line breaks real, or written ``\\n`` (one line, as an env file has it)."""
    return text.replace("\\n", "\n").encode()


def private_key(pem: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(_pem(pem), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("an Ed25519 private key in PEM is needed")
    return key


def public_key(pem: str) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(_pem(pem))
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("an Ed25519 public key in PEM is needed")
    return key


def public_keys(pems: str) -> list[Ed25519PublicKey]:
    """Every public key of a text of one or more PEM blocks (two while a key rotates)."""
    end = "-----END PUBLIC KEY-----"
    blocks = [block + end for block in pems.replace("\\n", "\n").split(end) if block.strip()]
    return [public_key(block) for block in blocks]


def new_private_key_pem() -> str:
    """A fresh signing key (``python -m common.auth`` prints one, with its public half)."""
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwk(key: Ed25519PublicKey) -> dict[str, str]:
    x = _b64(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))  # RFC 7638: these, in order
    thumbprint = _b64(hashlib.sha256(canonical.encode()).digest())
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": thumbprint, "alg": ALGORITHM, "use": "sig"}


def key_id(key: Ed25519PublicKey) -> str:
    return jwk(key)["kid"]


# -- signing ----------------------------------------------------------------------------------


class TokenSigner:
    """The gateway's: signs users' tokens with the current key, and publishes every key a token
    may still be verified with (the current one and ``extra_public_pems``)."""

    def __init__(
        self, signing_key_pem: str, issuer: str, audience: str, ttl_seconds: int, extra_public_pems: Iterable[str] = ()
    ) -> None:
        self._key = private_key(signing_key_pem)
        self._kid = key_id(self._key.public_key())
        self._issuer, self._audience, self.ttl_seconds = issuer, audience, ttl_seconds
        published = [self._key.public_key(), *(public_key(pem) for pem in extra_public_pems)]
        self.keys: dict[str, Ed25519PublicKey] = {key_id(k): k for k in published}

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
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self._kid})

    def jwks(self) -> dict:
        return {"keys": [jwk(key) for key in self.keys.values()]}


# -- verifying --------------------------------------------------------------------------------


class UserKeys(Protocol):
    async def key(self, kid: str) -> Ed25519PublicKey | None: ...


class SignerKeys:
    """The gateway verifies with the keys it publishes, without asking itself over HTTP."""

    def __init__(self, signer: TokenSigner) -> None:
        self._signer = signer

    async def key(self, kid: str) -> Ed25519PublicKey | None:
        return self._signer.keys.get(kid)


class PublishedKeys:
    """The gateway's public keys, read from its JWKS: at the first token, again every
    ``refresh_seconds`` (so a retired key stops counting), and when a token names a key not seen
    yet (at most every ``unknown_kid_seconds``, so junk tokens cannot make us fetch on every
    request)."""

    def __init__(self, url: str, refresh_seconds: float = 300.0, unknown_kid_seconds: float = 10.0) -> None:
        self._url = url
        self._refresh_seconds, self._unknown_kid_seconds = refresh_seconds, unknown_kid_seconds
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self._http: aiohttp.ClientSession | None = None

    async def key(self, kid: str) -> Ed25519PublicKey | None:
        age = time.monotonic() - self._fetched_at
        if age >= self._refresh_seconds or (kid not in self._keys and age >= self._unknown_kid_seconds):
            await self._fetch()
        return self._keys.get(kid)

    async def _fetch(self) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched_at < 1.0:
                return  # another request just fetched them
            try:
                self._http = self._http or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3))
                async with self._http.get(self._url) as response:
                    response.raise_for_status()
                    document = await response.json()
                keys = {}
                for entry in document["keys"]:
                    if entry.get("kty") == "OKP" and entry.get("crv") == "Ed25519":
                        key = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(entry["x"] + "=="))
                        keys[key_id(key)] = key  # by its own thumbprint, whatever the document calls it
                self._keys, self._fetched_at = keys, time.monotonic()
            except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as exc:
                if not self._keys:
                    log.warning("cannot read the token keys at %s: %r", self._url, exc)
                    raise try_again("Sign-in keys are not available yet; try again in a moment.") from exc
                log.warning("cannot refresh the token keys at %s (%r); keeping the ones held", self._url, exc)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()


VERIFIED_TOKENS_KEPT = 50_000


class TokenVerifier:
    """Every service's: a person's token, signed by a key the gateway publishes."""

    def __init__(self, user_keys: UserKeys, issuer: str, audience: str) -> None:
        self._user_keys = user_keys
        self._issuer, self._audience = issuer, audience
        self._verified: dict[str, tuple[Identity, int]] = {}  # token -> (identity, exp)

    async def verify(self, token: str) -> Identity:
        """The token's identity. A client sends the same token with every request until it
        expires, so a verified token is remembered until its ``exp``: checking the signature again
        costs more than the rest of a small request's own work (profiled)."""
        if (known := self._verified.get(token)) and known[1] > time.time():
            return known[0]
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != ALGORITHM or not isinstance(header.get("kid"), str):
                raise jwt.InvalidTokenError("only EdDSA tokens that name their key")
            key = await self._user_keys.key(header["kid"])
            if key is None:
                raise jwt.InvalidTokenError("signed by a key that is not (or no longer) published")
            claims = self._decode(token, key, self._issuer)
            identity = Identity.from_claims(claims)
        except (jwt.PyJWTError, ValidationError, KeyError, ValueError) as exc:
            raise unauthorized("The access token is invalid or expired.") from exc
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            self._verified.pop(next(iter(self._verified)))  # the oldest
        self._verified[token] = (identity, int(claims["exp"]))
        return identity

    def _decode(self, token: str, key: Ed25519PublicKey, issuer: str) -> dict:
        return jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],  # pinned: "none", HS256 and every other algorithm are refused
            audience=self._audience,
            issuer=issuer,
            options={"require": REQUIRED_CLAIMS},
        )


def unauthorized(detail: str) -> Problem:
    problem = Problem(401, "unauthorized", "Not signed in", detail)
    problem.headers = {"WWW-Authenticate": 'Bearer realm="appointments"'}
    return problem


class CurrentProfiles(Protocol):
    async def current(self, token_says: Identity) -> Identity: ...


TOKEN_VERIFIER = web.AppKey("token_verifier", TokenVerifier)
PROFILES = web.AppKey("profiles", CurrentProfiles)  # where a service has them (common.profiles)
_IDENTITY = web.RequestKey("identity", Identity | None)


@web.middleware
async def identity_middleware(request: web.Request, handler):
    """Attach the caller's identity when a bearer token is presented, with their profile as it is
    now where the service keeps up with profiles; reject a bad token."""
    header = header_value(request, "Authorization", 8192)
    identity = None
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise unauthorized("Use 'Authorization: Bearer <token>'.")
        identity = await request.app[TOKEN_VERIFIER].verify(token.strip())
        if (profiles := request.app.get(PROFILES)) is not None:
            identity = await profiles.current(identity)
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


if __name__ == "__main__":
    key = new_private_key_pem()
    print(key + public_pem(private_key(key)), end="")
