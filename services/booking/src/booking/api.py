from typing import Any
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


class PersonRef(BaseModel):
    id: UUID
    name: str


class BookingOut(BaseModel):
    """A booking as its viewer sees it: times in the viewer's timezone, with the offset."""

    id: UUID
    event_id: UUID
    event_name: str
    start: str
    end: str
    status: str  # confirmed | cancelled | needs_reschedule
    professional: PersonRef
    client: PersonRef | None = None  # shown to professionals and admins
    assignment: dict[str, Any] | None = None  # admins: why this professional


class BookingPage(BaseModel):
    items: list[BookingOut]
    next_cursor: str | None


class ProfessionalShare(BaseModel):
    id: UUID
    name: str
    bookings: int
    by_day: dict[str, int]


class Distribution(BaseModel):
    event_id: UUID
    professionals: list[ProfessionalShare]
    mean: float
    largest_deviation_from_mean: float
