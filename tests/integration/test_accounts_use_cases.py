"""The gateway's account use cases in this process, on a database of their own through the real
unit of work: a professional's account and its announcement are one unit of work; a client's
account announces nothing; a refused account writes and announces nothing."""

import importlib.util
import uuid
from pathlib import Path

import pytest

from common.auth import Role, TokenCodec
from common.db import create_engine, session_factory
from common.errors import Problem
from common.events import ProfessionalCreated, ProfessionalUpdated
from common.migrations import migrate
from common.outbox import Outbox
from common.settings import ServiceSettings
from common.unit_of_work import SessionUnitOfWork
from gateway.adapters.db import OUTBOX
from gateway.api import LoginIn, ProfessionalIn, ProfilePatch, RegisterIn
from gateway.service import AccountsService


@pytest.fixture(scope="module")
async def database(servers):
    url = servers.database_url(f"gateway_{uuid.uuid4().hex[:8]}")
    await migrate(Path(importlib.util.find_spec("gateway").submodule_search_locations[0]), url)
    engine = create_engine(url, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture
def accounts(database):
    published: list = []

    class Recording(SessionUnitOfWork):
        async def _commit(self) -> None:
            await super()._commit()
            published.extend(self.events)

    sessions, outbox = session_factory(database), Outbox(OUTBOX)
    tokens = TokenCodec(ServiceSettings(jwt_secret="unit-test-secret-0123456789abcdef0123"))
    return AccountsService(lambda: Recording(sessions, outbox, wake_relay=lambda: None), tokens), published


def email() -> str:
    return f"{uuid.uuid4().hex[:10]}@test.example"


async def test_a_professional_is_announced_with_the_account_and_each_change_with_the_next_sequence(accounts):
    service, published = accounts
    spec = ProfessionalIn(email=email(), password="pro-password-1", name="Dr. Ada", timezone="Europe/Oslo")
    who = await service.register(spec, Role.PROFESSIONAL)
    await service.update_profile(who.id, ProfilePatch(name="Dr. Ada L."))
    await service.update_profile(who.id, ProfilePatch(timezone="Asia/Tokyo"))
    assert [type(e) for e in published] == [ProfessionalCreated, ProfessionalUpdated, ProfessionalUpdated]
    assert [e.sequence for e in published] == [1, 2, 3]
    assert {e.aggregate_id for e in published} == {str(who.id)}
    assert (published[-1].data.name, published[-1].data.timezone, published[-1].data.email) == (
        "Dr. Ada L.",
        "Asia/Tokyo",
        spec.email.lower(),
    )


async def test_a_clients_account_announces_nothing(accounts):
    service, published = accounts
    who = await service.register(RegisterIn(email=email(), password="client-password", name="Casey"))
    await service.update_profile(who.id, ProfilePatch(name="Casey C."))
    assert published == []


async def test_a_taken_email_is_refused_and_nothing_is_announced(accounts):
    service, published = accounts
    address = email()
    await service.register(ProfessionalIn(email=address, password="pro-password-1", name="First"), Role.PROFESSIONAL)
    with pytest.raises(Problem) as refused:
        await service.register(ProfessionalIn(email=address.upper(), password="pro-password-2", name="Second"), Role.PROFESSIONAL)
    assert (refused.value.status, refused.value.code) == (409, "email_taken")
    assert [e.data.name for e in published] == ["First"]
    token = await service.login(LoginIn(email=address, password="pro-password-1"))
    assert token["token_type"] == "bearer"
