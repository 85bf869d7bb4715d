"""Accounts: registration, sign-in, profiles, professionals, and the configured admin. A
professional's account and its announcement (``professional.created`` / ``.updated``, which the
shifts service keeps its directory from) are one unit of work: no call to another service waits
inside the transaction."""

import asyncio
from collections.abc import Callable
from uuid import UUID

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from common.auth import Identity, TokenSigner
from common.contracts import Person
from common.errors import Problem, not_found
from common.events import ProfessionalCreated, ProfessionalUpdated
from common.profiles import Profiles
from common.roles import Role
from common.unit_of_work import UnitOfWork
from gateway.adapters.db import UserRow
from gateway.api import LoginIn, ProfilePatch, RegisterIn

_hasher = PasswordHasher()
# Verifying against this when the email is unknown keeps sign-in time the same either way.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def identity(row: UserRow) -> Identity:
    return Identity(id=row.id, role=Role(row.role), name=row.name, email=row.email, timezone=row.timezone)


def person(row: UserRow) -> Person:
    return Person(id=row.id, name=row.name, email=row.email, timezone=row.timezone)


def email_taken() -> Problem:
    return Problem(409, "email_taken", "Email taken", "An account with that email exists.")


class AccountsService:
    def __init__(
        self, units_of_work: Callable[[], UnitOfWork], tokens: TokenSigner, profiles: Profiles, hashes_at_once: int = 4
    ) -> None:
        self._uow = units_of_work
        self._tokens = tokens
        self._profiles = profiles
        # argon2 takes 64 MiB per hash: a flood of sign-ins queues here instead of taking the memory.
        self._hashing = asyncio.Semaphore(hashes_at_once)

    async def _hash(self, work: Callable[..., object], *args: str) -> object:
        async with self._hashing:
            return await asyncio.to_thread(work, *args)

    async def register(self, spec: RegisterIn, role: Role = Role.CLIENT) -> Identity:
        password_hash = await self._hash(_hasher.hash, spec.password)
        try:
            async with self._uow() as uow:
                row = UserRow(
                    email=spec.email.lower(),
                    name=spec.name,
                    role=role.value,
                    timezone=spec.timezone,
                    password_hash=password_hash,
                    sequence=1,
                )
                uow.session.add(row)
                await uow.session.flush()
                if role is Role.PROFESSIONAL:
                    uow.publish(ProfessionalCreated.of(row.id, row.sequence, person(row)))
        except IntegrityError as exc:
            raise email_taken() from exc
        return identity(row)

    async def login(self, spec: LoginIn) -> dict:
        async with self._uow() as uow:
            row = await uow.session.scalar(select(UserRow).where(UserRow.email == spec.email.lower()))
        try:
            await self._hash(_hasher.verify, row.password_hash if row else _DUMMY_HASH, spec.password)
        except (VerificationError, InvalidHashError):
            row = None
        if row is None:
            raise Problem(401, "invalid_credentials", "Invalid credentials", "Email or password is wrong.")
        return self.token_for(row)

    def token_for(self, row: UserRow) -> dict:
        return {"access_token": self._tokens.issue(identity(row)), "token_type": "bearer", "expires_in": self._tokens.ttl_seconds}

    async def profile(self, user_id: UUID) -> UserRow:
        async with self._uow() as uow:
            row = await uow.session.get(UserRow, user_id)
        if row is None:
            raise not_found("account")
        return row

    async def update_profile(self, user_id: UUID, patch: ProfilePatch) -> UserRow:
        async with self._uow() as uow:
            row = await uow.session.get(UserRow, user_id, with_for_update=True)
            if row is None:
                raise not_found("account")
            for field, value in patch.model_dump(exclude_none=True).items():
                setattr(row, field, value)
            if row.role == Role.PROFESSIONAL.value:
                row.sequence += 1
                uow.publish(ProfessionalUpdated.of(row.id, row.sequence, person(row)))
            # Every token issued before now carries the old profile: the services read the new one
            # instead from the next request on. Announced before the commit (so that the answer
            # to this request means it is in effect), taken back if the commit does not happen.
            await self._profiles.changed(identity(row), self._tokens.ttl_seconds)
            uow.on_rollback(lambda: self._profiles.forget(user_id))
        return row

    async def professionals(self, cursor: UUID | None, limit: int) -> list[UserRow]:
        async with self._uow() as uow:
            query = select(UserRow).where(UserRow.role == Role.PROFESSIONAL.value).order_by(UserRow.id).limit(limit)
            if cursor:
                query = query.where(UserRow.id > cursor)
            return list((await uow.session.scalars(query)).all())

    async def ensure_admin(self, email: str, password: str, name: str) -> None:
        """Make sure the configured admin exists and signs in with the configured password."""
        password_hash = await self._hash(_hasher.hash, password)
        async with self._uow() as uow:
            row = await uow.session.scalar(select(UserRow).where(UserRow.email == email.lower()).with_for_update())
            if row is None:
                uow.session.add(
                    UserRow(email=email.lower(), name=name, role=Role.ADMIN.value, timezone="UTC", password_hash=password_hash)
                )
            else:
                row.role, row.password_hash = Role.ADMIN.value, password_hash
