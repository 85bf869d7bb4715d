from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from common.contracts import ZoneName
from common.roles import Role


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterIn(Input):
    email: EmailStr
    password: str = Field(min_length=8, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    timezone: ZoneName = "UTC"


class ProfessionalIn(RegisterIn):
    pass


class LoginIn(Input):
    email: EmailStr
    password: str = Field(max_length=200)


class ProfilePatch(Input):
    name: str | None = Field(None, min_length=1, max_length=200)
    timezone: ZoneName | None = None


class PageQuery(Input):
    cursor: UUID | None = None
    limit: int = Field(50, ge=1, le=200)


class UserOut(BaseModel):
    id: UUID
    email: str
    name: str
    role: Role
    timezone: str


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"]
    expires_in: int  # seconds


class ProfileOut(UserOut):
    """PATCH /me: the profile, and a token that carries the change."""

    access_token: str
    token_type: Literal["bearer"]
    expires_in: int  # seconds


class ProfessionalOut(BaseModel):
    id: UUID
    email: str
    name: str
    timezone: str


class ProfessionalPage(BaseModel):
    items: list[ProfessionalOut]
    next_cursor: UUID | None
