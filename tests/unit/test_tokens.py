"""Tokens as an attacker would try them (issue 14): only an EdDSA token signed by a published key,
for this audience and issuer, unexpired and complete, with a person's role, is a person. A
verified token is remembered, but never past its expiry."""

import asyncio
import time
import uuid

import jwt
import pytest

from common.auth import (
    Identity,
    SignerKeys,
    TokenSigner,
    TokenVerifier,
    new_private_key_pem,
    private_key,
    public_pem,
)
from common.errors import Problem
from common.roles import Role
from tests.forged_tokens import forged_tokens

ISSUER, AUDIENCE = "appointments-gateway", "appointments"
GATEWAY_KEY, NEXT_KEY, STRANGER_KEY = (new_private_key_pem() for _ in range(3))
ANA = Identity(id=uuid.uuid4(), role=Role.CLIENT, name="Ana", timezone="Europe/Lisbon")


def signer(key: str = GATEWAY_KEY, ttl: int = 3600, extra: tuple[str, ...] = ()) -> TokenSigner:
    return TokenSigner(key, ISSUER, AUDIENCE, ttl, extra)


def verifier(published: TokenSigner | None = None) -> TokenVerifier:
    return TokenVerifier(SignerKeys(published or signer()), ISSUER, AUDIENCE)


def claims(**changes) -> dict:
    now = int(time.time())
    base = {"sub": str(ANA.id), "role": "admin", "name": "Ana", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600}
    return {k: v for k, v in (base | changes).items() if v is not None}


def signed(body: dict, key: str = GATEWAY_KEY, **header) -> str:
    pem = private_key(key)
    kid = TokenSigner(key, ISSUER, AUDIENCE, 60).jwks()["keys"][0]["kid"]
    return jwt.encode(body, pem, algorithm="EdDSA", headers={"kid": kid} | header)


async def refused(token: str, verifying: TokenVerifier | None = None) -> None:
    with pytest.raises(Problem) as problem:
        await (verifying or verifier()).verify(token)
    assert problem.value.status == 401


async def test_a_person_token_from_the_gateway_is_that_person():
    assert await verifier().verify(signer().issue(ANA)) == ANA


async def test_every_forgery_and_every_incomplete_token_is_refused():
    for case, token in forged_tokens(GATEWAY_KEY, ISSUER, AUDIENCE, str(ANA.id)).items():
        try:
            await refused(token)
        except (AssertionError, pytest.fail.Exception):
            raise AssertionError(f"{case}: not refused") from None


async def test_a_key_nobody_publishes_and_a_role_nobody_has_are_refused():
    await refused(signed(claims(), key=STRANGER_KEY))  # well formed, but no published key signed it
    await refused(signed(claims(role="service", name="availability")))  # no such role: no service identity exists


async def test_keys_rotate_old_and_new_together_then_the_old_retired():
    old_signer = signer(GATEWAY_KEY)
    old_token = old_signer.issue(ANA)
    # 1. the next key is published beside the current one; 2. the gateway signs with it, the old
    # one still published; 3. the old one is retired.
    both = signer(NEXT_KEY, extra=(public_pem(private_key(GATEWAY_KEY)),))
    during = verifier(both)
    assert await during.verify(old_token) == ANA
    assert await during.verify(both.issue(ANA)) == ANA
    after = verifier(signer(NEXT_KEY))
    await refused(old_token, after)
    assert await after.verify(both.issue(ANA)) == ANA


async def test_a_remembered_token_still_expires():
    short = signer(ttl=2)  # whole seconds: it expires 1 to 2 s from now
    verifying = verifier(short)
    token = short.issue(ANA)
    assert await verifying.verify(token) == ANA
    assert await verifying.verify(token) == ANA  # from memory
    await asyncio.sleep(2.1)
    await refused(token, verifying)
