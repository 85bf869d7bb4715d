"""The integration events of SPEC section 5, one class each: its routing key, exchange, producer,
payload model and schema version are declared once, on the class, and used by the producers (the
outbox), the consumers (their subscriptions and dispatch) and the AsyncAPI document alike.

On the wire an event travels in the one envelope (``common.envelope.IntegrationEvent``); it is
translated at the edge: ``envelope()`` on the way out, ``from_envelope()`` on the way in.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Self, TypeVar
from uuid import UUID, uuid4

from pydantic import BaseModel

from common.contracts import (
    BlackoutChangeData,
    BookingData,
    EventData,
    MovedBookingData,
    Person,
    RescheduledBookingData,
    ShiftData,
    WaitlistEntryData,
)
from common.envelope import ACCOUNTS_EXCHANGE, BOOKINGS_EXCHANGE, SHIFTS_EXCHANGE, IntegrationEvent
from common.logging import correlation_id

P = TypeVar("P", bound=BaseModel)

EVENT_TYPES: dict[str, type["Event"]] = {}  # routing key -> class, every event there is


@dataclass(frozen=True)
class Event(Generic[P]):
    aggregate_id: str
    sequence: int  # per aggregate, increasing: a consumer keeps the newest
    data: P
    event_id: UUID = field(default_factory=uuid4)
    correlation_id: str | None = field(default_factory=correlation_id.get)
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    routing_key: ClassVar[str]
    exchange: ClassVar[str]
    producer: ClassVar[str]
    payload: ClassVar[type[BaseModel]]
    version: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "routing_key" in cls.__dict__:  # a concrete event, not a family
            if cls.routing_key in EVENT_TYPES:
                raise TypeError(f"two events route as {cls.routing_key!r}")
            EVENT_TYPES[cls.routing_key] = cls

    @classmethod
    def of(cls, aggregate_id: Any, sequence: int, data: P) -> Self:
        if not isinstance(data, cls.payload):  # caught here, not by every consumer parking it
            raise TypeError(f"{cls.routing_key} carries {cls.payload.__name__}, not {type(data).__name__}")
        return cls(str(aggregate_id), sequence, data)

    def envelope(self) -> IntegrationEvent:
        return IntegrationEvent(
            event_id=self.event_id,
            type=self.routing_key,
            version=self.version,
            occurred_at=self.occurred_at,
            producer=self.producer,
            correlation_id=self.correlation_id,
            aggregate_id=self.aggregate_id,
            sequence=self.sequence,
            data=self.data.model_dump(mode="json"),
        )

    @classmethod
    def from_envelope(cls, envelope: IntegrationEvent) -> Self:
        """The typed event; raises pydantic's ValidationError when the data does not fit."""
        return cls(
            envelope.aggregate_id,
            envelope.sequence,
            cls.payload.model_validate(envelope.data),
            envelope.event_id,
            envelope.correlation_id,
            envelope.occurred_at,
        )


# -- shifts.events: the shifts service -------------------------------------------------------


class ShiftsServiceEvent(Event[P]):
    exchange = SHIFTS_EXCHANGE
    producer = "shifts"


class EventCreated(ShiftsServiceEvent[EventData]):
    routing_key, payload = "event.created", EventData


class EventUpdated(ShiftsServiceEvent[EventData]):
    routing_key, payload = "event.updated", EventData


class BlackoutCreated(ShiftsServiceEvent[BlackoutChangeData]):
    routing_key, payload = "blackout.created", BlackoutChangeData


class BlackoutDeleted(ShiftsServiceEvent[BlackoutChangeData]):
    routing_key, payload = "blackout.deleted", BlackoutChangeData


class ShiftCreated(ShiftsServiceEvent[ShiftData]):
    routing_key, payload = "shift.created", ShiftData


class ShiftUpdated(ShiftsServiceEvent[ShiftData]):
    routing_key, payload = "shift.updated", ShiftData


class ShiftCancelled(ShiftsServiceEvent[ShiftData]):
    routing_key, payload = "shift.cancelled", ShiftData


EVENT_CHANGES = (EventCreated, EventUpdated, BlackoutCreated, BlackoutDeleted)  # each carries the whole event
SHIFT_CHANGES = (ShiftCreated, ShiftUpdated, ShiftCancelled)

# -- bookings.events: the booking service ----------------------------------------------------


class BookingEvent(Event[BookingData]):
    exchange = BOOKINGS_EXCHANGE
    producer = "booking"
    payload = BookingData


class BookingConfirmed(BookingEvent):
    routing_key = "booking.confirmed"


class BookingCancelled(BookingEvent):
    routing_key = "booking.cancelled"


class BookingReassigned(BookingEvent):
    routing_key = "booking.reassigned"
    payload = MovedBookingData


class BookingNeedsReschedule(BookingEvent):
    routing_key = "booking.needs_reschedule"


class BookingRescheduled(BookingEvent):
    routing_key = "booking.rescheduled"
    payload = RescheduledBookingData


BOOKING_EVENTS = (BookingConfirmed, BookingCancelled, BookingReassigned, BookingNeedsReschedule, BookingRescheduled)


class WaitlistEvent(Event[WaitlistEntryData]):
    exchange = BOOKINGS_EXCHANGE
    producer = "booking"
    payload = WaitlistEntryData


class WaitlistOffered(WaitlistEvent):
    routing_key = "waitlist.offered"


class WaitlistExpired(WaitlistEvent):
    routing_key = "waitlist.expired"


WAITLIST_EVENTS = (WaitlistOffered, WaitlistExpired)

# -- accounts.events: the gateway, which keeps the accounts ----------------------------------


class ProfessionalEvent(Event[Person]):
    exchange = ACCOUNTS_EXCHANGE
    producer = "gateway"
    payload = Person


class ProfessionalCreated(ProfessionalEvent):
    routing_key = "professional.created"


class ProfessionalUpdated(ProfessionalEvent):
    routing_key = "professional.updated"


PROFESSIONAL_CHANGES = (ProfessionalCreated, ProfessionalUpdated)
