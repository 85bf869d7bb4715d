"""The gateway's account use cases in this process, on a database of their own through the real
unit of work: a professional's account and its announcement are one unit of work; a client's
account announces nothing; a refused account writes and announces nothing."""

import asyncio
import uuid

import pytest

from common.auth import Identity, TokenSigner, new_private_key_pem
from common.errors import Problem
from common.events import ProfessionalCreated, ProfessionalUpdated
from common.roles import Role
from gateway.adapters.db import OUTBOX
from gateway.api import LoginIn, ProfessionalIn, ProfilePatch, RegisterIn
from gateway.service import AccountsService
from tests.integration.use_cases import migrated_database, recording_units_of_work


@pytest.fixture(scope="module")
async def database(servers):
    engine = await migrated_database(servers, "gateway")
    yield engine
    await engine.dispose()


class RecordedProfiles:
    """The profile changes the gateway announces to the services (Redis, in the system)."""

    def __init__(self) -> None:
        self.changed_to: list[Identity] = []

    async def changed(self, who: Identity, keep_seconds: int) -> None:
        assert keep_seconds == 600  # as long as a token from before the change can live
        self.changed_to.append(who)

    async def forget(self, person) -> None:
        self.changed_to = [who for who in self.changed_to if who.id != person]


@pytest.fixture
def accounts(database):
    units_of_work, published = recording_units_of_work(database, OUTBOX)
    tokens = TokenSigner(new_private_key_pem(), "appointments-gateway", "appointments", 600)
    profiles = RecordedProfiles()
    service = AccountsService(units_of_work, tokens, profiles)
    service.profiles = profiles
    return service, published


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


async def test_a_clients_account_announces_no_event_but_its_profile_change_reaches_the_services(accounts):
    service, published = accounts
    who = await service.register(RegisterIn(email=email(), password="client-password", name="Casey"))
    await service.update_profile(who.id, ProfilePatch(name="Casey C.", timezone="America/Lima"))
    assert published == []
    (now,) = service.profiles.changed_to
    assert (now.id, now.name, now.timezone, now.role) == (who.id, "Casey C.", "America/Lima", Role.CLIENT)


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


async def test_password_hashing_runs_at_most_so_many_at_once(database):
    """argon2 takes 64 MiB a hash: a flood of sign-ins waits for a turn instead of taking the memory."""
    import threading
    import time as clock

    units_of_work, _ = recording_units_of_work(database, OUTBOX)
    service = AccountsService(
        units_of_work, TokenSigner(new_private_key_pem(), "i", "a", 60), RecordedProfiles(), hashes_at_once=2
    )
    running, most, lock = 0, 0, threading.Lock()

    def slow_hash(_: str) -> str:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        clock.sleep(0.05)
        with lock:
            running -= 1
        return "hashed"

    await asyncio.gather(*(service._hash(slow_hash, "password") for _ in range(12)))
    assert most == 2
