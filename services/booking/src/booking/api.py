from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field


class BookingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: UUID
    start: AwareDatetime
    email: EmailStr | None = None


class BookingQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cursor: UUID | None = None
    limit: int = Field(50, ge=1, le=200)


class UsageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: UUID | None = None
