"""The one integration-event envelope of SPEC section 5, shared by every producer and consumer."""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field

SHIFTS_EXCHANGE = "shifts.events"
BOOKINGS_EXCHANGE = "bookings.events"
ACCOUNTS_EXCHANGE = "accounts.events"


class IntegrationEvent(BaseModel):
    """An event as it travels on RabbitMQ; the routing key is ``type``."""

    model_config = ConfigDict(frozen=True)

    event_id: UUID = Field(default_factory=uuid4)
    type: str
    version: int = 1
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    producer: str
    correlation_id: str | None = None
    aggregate_id: str
    sequence: int = Field(ge=1)
    data: dict[str, Any]
