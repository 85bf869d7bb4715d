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
