"""The booking service's tables (the system of record for bookings), declared for its migrations:
alembic compares these with the database. The service reaches them only through
``adapters/repository.py``, on asyncpg."""

from datetime import datetime
from uuid import UUID

from sqlalchemy import CheckConstraint, DateTime, Index, Integer, String, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.outbox import outbox_table


class Base(DeclarativeBase):
    pass


class BookingRow(Base):
    __tablename__ = "bookings"
    __table_args__ = (
        UniqueConstraint("client_id", "idempotency_key", name="bookings_idempotency"),
        # The final guard: Redis hands out capacity as numbered units (1..capacity); even if it
        # were wrong, two confirmed bookings can never hold the same unit of a professional.
        Index(
            "bookings_one_per_unit",
            "event_id",
            "slot_start",
            "professional_id",
            "unit",
            unique=True,
            postgresql_where=text("status = 'confirmed'"),
        ),
        CheckConstraint("unit >= 1", name="bookings_unit_positive"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    event_id: Mapped[UUID] = mapped_column(index=True)
    event_name: Mapped[str] = mapped_column(String(200))
    slot_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    slot_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(20))
    client_id: Mapped[UUID] = mapped_column(index=True)
    client_name: Mapped[str] = mapped_column(String(200))
    client_email: Mapped[str | None] = mapped_column(String(320))
    client_timezone: Mapped[str] = mapped_column(String(64))
    professional_id: Mapped[UUID] = mapped_column(index=True)
    professional_name: Mapped[str] = mapped_column(String(200))
    professional_email: Mapped[str | None] = mapped_column(String(320))
    professional_timezone: Mapped[str] = mapped_column(String(64))
    unit: Mapped[int] = mapped_column(Integer)
    # Why this professional: {"eligible": {professional: bookings that day}, "random": r}
    assignment: Mapped[dict] = mapped_column(JSONB)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(Integer)
    reminder_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # when its reminder is due; null: none
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class EventDefinitionRow(Base):
    """An event's hours, slot length and blackouts as the shifts service announced them (newest
    sequence kept): with the shifts, the capacity record every booking is checked against."""

    __tablename__ = "event_definitions"

    id: Mapped[UUID] = mapped_column(primary_key=True)
    sequence: Mapped[int] = mapped_column(Integer)
    doc: Mapped[dict] = mapped_column(JSONB)


class ShiftRow(Base):
    """The shifts as the shifts service announced them (newest sequence kept): the capacity record
    every booking is checked against, and which bookings a shift change leaves without a unit."""

    __tablename__ = "shifts"
    __table_args__ = (Index("shifts_of_professional", "event_id", "professional_id", "status"),)

    id: Mapped[UUID] = mapped_column(primary_key=True)
    event_id: Mapped[UUID] = mapped_column(index=True)
    professional_id: Mapped[UUID] = mapped_column(index=True)
    start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    capacity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12))
    sequence: Mapped[int] = mapped_column(Integer)
    doc: Mapped[dict | None] = mapped_column(JSONB)  # the shift as announced (ShiftData): what counters rebuild from


class RescheduleRow(Base):
    """A reschedule made with an Idempotency-Key: a retry with the key finds it and moves nothing."""

    __tablename__ = "reschedules"

    booking_id: Mapped[UUID] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WaitlistRow(Base):
    """A client waiting for a full slot; offered a unit, the booking its claim makes has its id."""

    __tablename__ = "waitlist"
    __table_args__ = (
        # One place per client and slot, while it lasts.
        Index(
            "waitlist_one_per_slot",
            "client_id",
            "event_id",
            "slot_start",
            unique=True,
            postgresql_where=text("status IN ('waiting', 'offered')"),
        ),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    event_id: Mapped[UUID] = mapped_column(index=True)
    event_name: Mapped[str] = mapped_column(String(200))
    slot_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    slot_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    client_id: Mapped[UUID] = mapped_column(index=True)
    client_name: Mapped[str] = mapped_column(String(200))
    client_email: Mapped[str | None] = mapped_column(String(320))
    client_timezone: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12))
    offer_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sequence: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CalendarFeedRow(Base):
    """A person's private calendar subscription: only the hash of its token is kept, so the
    table read by someone else opens no one's calendar."""

    __tablename__ = "calendar_feeds"
    __table_args__ = (UniqueConstraint("token_hash", name="calendar_feeds_token_hash"),)

    person_id: Mapped[UUID] = mapped_column(primary_key=True)
    role: Mapped[str] = mapped_column(String(20))  # whose appointments: a client's, or a professional's
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


OUTBOX = outbox_table(Base.metadata)
