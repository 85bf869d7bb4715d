from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from common.schedule import zone_named


def _zone(value: str | None) -> str | None:
    return value if value is None else zone_named(value).key


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterIn(Input):
    email: EmailStr
    password: str = Field(min_length=8, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    timezone: str = "UTC"

    _tz = field_validator("timezone")(lambda cls, v: _zone(v))


class ProfessionalIn(RegisterIn):
    pass


class LoginIn(Input):
    email: EmailStr
    password: str = Field(max_length=200)


class ProfilePatch(Input):
    name: str | None = Field(None, min_length=1, max_length=200)
    timezone: str | None = None

    _tz = field_validator("timezone")(lambda cls, v: _zone(v))


class PageQuery(Input):
    cursor: UUID | None = None
    limit: int = Field(50, ge=1, le=200)


class UserOut(BaseModel):
    id: UUID
    email: str
    name: str
    role: str
    timezone: str


class TokenOut(BaseModel):
    access_token: str
    token_type: str
    expires_in: int


class ProfileOut(UserOut):
    """PATCH /me: the profile, and a token that carries the change."""

    access_token: str
    token_type: str
    expires_in: int


class ProfessionalOut(BaseModel):
    id: UUID
    email: str
    name: str
    timezone: str


class ProfessionalPage(BaseModel):
    items: list[ProfessionalOut]
    next_cursor: str | None
