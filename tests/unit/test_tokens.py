"""A verified token is remembered, but never past its expiry, and a bad one never is."""

import time
import uuid

import pytest

from common.auth import Identity, TokenCodec
from common.errors import Problem
from common.roles import Role
from common.settings import ServiceSettings


def codec(ttl_seconds: int = 3600) -> TokenCodec:
    return TokenCodec(ServiceSettings(jwt_secret="unit-test-secret-0123456789abcdef0123", jwt_ttl_seconds=ttl_seconds))


def test_a_remembered_token_still_expires():
    tokens = codec(ttl_seconds=1)
    who = Identity(id=uuid.uuid4(), role=Role.CLIENT, name="Ana")
    token = tokens.issue(who)
    assert tokens.verify(token) == who
    assert tokens.verify(token) == who  # from memory
    time.sleep(2.1)
    with pytest.raises(Problem) as refused:
        tokens.verify(token)
    assert refused.value.status == 401


def test_a_token_signed_with_another_key_is_refused_every_time():
    forged = TokenCodec(ServiceSettings(jwt_secret="someone-else-secret-0123456789abcdef")).issue(
        Identity(id=uuid.uuid4(), role=Role.ADMIN, name="Mallory")
    )
    tokens = codec()
    for _ in range(2):
        with pytest.raises(Problem):
            tokens.verify(forged)
