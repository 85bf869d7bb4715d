from datetime import date
from uuid import UUID

from pydantic import BaseModel, ConfigDict, field_validator

from common.schedule import zone_named


class AvailabilityQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: UUID
    date: date
    tz: str | None = None

    _zone = field_validator("tz")(lambda cls, v: v if v is None else zone_named(v).key)


class SlotOut(BaseModel):
    start: str  # ISO 8601 in the answer's timezone, with its offset
    end: str
    status: str  # available | full | blocked
    remaining: int


class AvailabilityOut(BaseModel):
    event_id: UUID
    date: date
    timezone: str
    slots: list[SlotOut]
    reason: str | None  # no_event | no_shifts | fully_booked | blackout, when nothing is available
