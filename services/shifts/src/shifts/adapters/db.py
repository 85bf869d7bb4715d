"""The shifts service's tables: the system of record for events, blackouts and shifts."""

from datetime import date, datetime, time
from uuid import UUID, uuid4

from sqlalchemy import Date, DateTime, ForeignKey, Integer, String, Time, func, text
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from common.outbox import outbox_table


class Base(DeclarativeBase):
    pass


class EventRow(Base):
    __tablename__ = "events"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    opens_at: Mapped[time] = mapped_column(Time)
    closes_at: Mapped[time] = mapped_column(Time)
    slot_minutes: Mapped[int] = mapped_column(Integer)
    # The booking rules (common.contracts.BookingRules): null, no such rule.
    min_notice_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    horizon_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_per_professional_per_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    waitlist_offer_minutes: Mapped[int] = mapped_column(Integer, server_default="15")
    reminder_hours: Mapped[int] = mapped_column(Integer, server_default="24")
    sequence: Mapped[int] = mapped_column(Integer, default=1)  # bumped by every change, blackouts included
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    blackouts: Mapped[list["BlackoutRow"]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="BlackoutRow.created_at"
    )


class BlackoutRow(Base):
    __tablename__ = "blackouts"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    event_id: Mapped[UUID] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # daily | one_off
    start_time: Mapped[time | None] = mapped_column(Time)
    end_time: Mapped[time | None] = mapped_column(Time)
    start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ProfessionalRow(Base):
    """The professionals' directory, from the gateway's professional.* events (newest sequence
    kept); shift events carry it to consumers."""

    __tablename__ = "professionals"

    id: Mapped[UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    timezone: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(Integer, server_default="0")  # 0: only the professional's own token so far


class ShiftRow(Base):
    __tablename__ = "shifts"
    __table_args__ = (
        # One professional's active shifts on one event never overlap, even under concurrent writes.
        ExcludeConstraint(
            ("event_id", "="),
            ("professional_id", "="),
            (text('tstzrange(start, "end")'), "&&"),
            name="shifts_no_overlap",
            using="gist",
            where=text("status = 'active'"),
        ),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    event_id: Mapped[UUID] = mapped_column(ForeignKey("events.id"), index=True)
    professional_id: Mapped[UUID] = mapped_column(ForeignKey("professionals.id"), index=True)
    start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    capacity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), default="active")
    sequence: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    professional: Mapped[ProfessionalRow] = relationship(lazy="joined", innerjoin=True)


OUTBOX = outbox_table(Base.metadata)
