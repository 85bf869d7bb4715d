"""Accounts: registration, sign-in, profiles, professionals, and the configured admin."""

import asyncio
from uuid import UUID

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from common.auth import Identity, Role, TokenCodec
from common.errors import Problem, not_found
from gateway.adapters.db import UserRow
from gateway.adapters.services import ShiftsDirectory
from gateway.api import LoginIn, ProfilePatch, RegisterIn

_hasher = PasswordHasher()
# Verifying against this when the email is unknown keeps sign-in time the same either way.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def identity(row: UserRow) -> Identity:
    return Identity(id=row.id, role=Role(row.role), name=row.name, email=row.email, timezone=row.timezone)


def email_taken() -> Problem:
    return Problem(409, "email_taken", "Email taken", "An account with that email exists.")


class AccountsService:
    def __init__(self, sessions: async_sessionmaker, tokens: TokenCodec, directory: ShiftsDirectory) -> None:
        self._sessions = sessions
        self._tokens = tokens
        self._directory = directory

    async def register(self, spec: RegisterIn, role: Role = Role.CLIENT) -> Identity:
        password_hash = await asyncio.to_thread(_hasher.hash, spec.password)
        try:
            async with self._sessions.begin() as session:
                row = UserRow(
                    email=spec.email.lower(), name=spec.name, role=role.value, timezone=spec.timezone, password_hash=password_hash
                )
                session.add(row)
                await session.flush()
                who = identity(row)
                if role is Role.PROFESSIONAL:
                    # Inside the transaction: the account exists only if the shifts service knows it too.
                    await self._directory.upsert_professional(who)
        except IntegrityError as exc:
            raise email_taken() from exc
        return who

    async def login(self, spec: LoginIn) -> dict:
        async with self._sessions() as session:
            row = await session.scalar(select(UserRow).where(UserRow.email == spec.email.lower()))
        try:
            await asyncio.to_thread(_hasher.verify, row.password_hash if row else _DUMMY_HASH, spec.password)
        except (VerificationError, InvalidHashError):
            row = None
        if row is None:
            raise Problem(401, "invalid_credentials", "Invalid credentials", "Email or password is wrong.")
        return self.token_for(row)

    def token_for(self, row: UserRow) -> dict:
        return {"access_token": self._tokens.issue(identity(row)), "token_type": "bearer", "expires_in": self._tokens.ttl_seconds}

    async def profile(self, user_id: UUID) -> UserRow:
        async with self._sessions() as session:
            row = await session.get(UserRow, user_id)
        if row is None:
            raise not_found("account")
        return row

    async def update_profile(self, user_id: UUID, patch: ProfilePatch) -> UserRow:
        async with self._sessions.begin() as session:
            row = await session.get(UserRow, user_id, with_for_update=True)
            if row is None:
                raise not_found("account")
            for field, value in patch.model_dump(exclude_none=True).items():
                setattr(row, field, value)
            if row.role == Role.PROFESSIONAL.value:
                await self._directory.upsert_professional(identity(row))
        return row

    async def professionals(self, cursor: UUID | None, limit: int) -> list[UserRow]:
        async with self._sessions() as session:
            query = select(UserRow).where(UserRow.role == Role.PROFESSIONAL.value).order_by(UserRow.id).limit(limit)
            if cursor:
                query = query.where(UserRow.id > cursor)
            return list((await session.scalars(query)).all())

    async def ensure_admin(self, email: str, password: str, name: str) -> None:
        """Make sure the configured admin exists and signs in with the configured password."""
        password_hash = await asyncio.to_thread(_hasher.hash, password)
        async with self._sessions.begin() as session:
            row = await session.scalar(select(UserRow).where(UserRow.email == email.lower()).with_for_update())
            if row is None:
                session.add(
                    UserRow(email=email.lower(), name=name, role=Role.ADMIN.value, timezone="UTC", password_hash=password_hash)
                )
            else:
                row.role, row.password_hash = Role.ADMIN.value, password_hash
