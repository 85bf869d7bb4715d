"""Use cases of the shifts service. Each is one unit of work: one transaction that also writes the
events it publishes."""

import asyncio
import time
from collections.abc import Callable
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from common.auth import Identity
from common.contracts import (
    BlackoutChangeData,
    BookingRules,
    DailyBlackoutData,
    EventData,
    OneOffBlackoutData,
    Person,
    ShiftData,
    ShiftStatus,
)
from common.errors import Problem, not_found
from common.events import (
    BlackoutCreated,
    BlackoutDeleted,
    Event,
    EventCreated,
    EventUpdated,
    ShiftCancelled,
    ShiftCreated,
    ShiftUpdated,
)
from common.roles import Role
from common.unit_of_work import UnitOfWork
from shifts import domain
from shifts.adapters.db import BlackoutRow, EventRow, ProfessionalRow, ShiftRow
from shifts.api import BlackoutIn, EventIn, EventPatch, ShiftIn, ShiftPatch


def event_data(row: EventRow) -> EventData:
    return EventData(
        id=row.id,
        name=row.name,
        timezone=row.timezone,
        start_date=row.start_date,
        end_date=row.end_date,
        opens_at=row.opens_at,
        closes_at=row.closes_at,
        slot_minutes=row.slot_minutes,
        blackouts=[blackout_data(b) for b in row.blackouts],
        **{rule: getattr(row, rule) for rule in BookingRules.model_fields},
    )


def blackout_data(row: BlackoutRow) -> DailyBlackoutData | OneOffBlackoutData:
    if row.kind == "daily":
        return DailyBlackoutData(id=row.id, start_time=row.start_time, end_time=row.end_time, reason=row.reason)
    return OneOffBlackoutData(id=row.id, start=row.start, end=row.end, reason=row.reason)


def shift_data(row: ShiftRow, event: EventRow) -> ShiftData:
    pro = row.professional
    return ShiftData(
        id=row.id,
        event_id=row.event_id,
        professional_id=row.professional_id,
        professional=Person(id=pro.id, name=pro.name, email=pro.email, timezone=pro.timezone),
        start=row.start,
        end=row.end,
        capacity=row.capacity,
        status=ShiftStatus(row.status),
        slot_minutes=event.slot_minutes,
    )


class ShiftsService:
    def __init__(self, units_of_work: Callable[[], UnitOfWork], professional_wait_seconds: float = 0.0) -> None:
        self._uow = units_of_work
        self._professional_wait = professional_wait_seconds

    # -- events and blackouts ------------------------------------------------------------------

    async def create_event(self, spec: EventIn) -> EventData:
        domain.check_event(spec.start_date, spec.end_date, spec.opens_at, spec.closes_at, spec.slot_minutes)
        async with self._uow() as uow:
            row = EventRow(**spec.model_dump(), sequence=1, blackouts=[])
            uow.session.add(row)
            await uow.session.flush()
            data = event_data(row)
            uow.publish(EventCreated.of(row.id, row.sequence, data))
        return data

    async def update_event(self, event_id: UUID, patch: EventPatch) -> EventData:
        """Change an event; refused (409) where an active shift would no longer fit it."""
        async with self._uow() as uow:
            session = uow.session
            event = await self._lock_event(session, event_id)
            changes = patch.changes()
            for field, value in changes.items():
                setattr(event, field, value)
            domain.check_event(event.start_date, event.end_date, event.opens_at, event.closes_at, event.slot_minutes)
            schedule = event_data(event).schedule()
            active_shifts = select(ShiftRow).where(ShiftRow.event_id == event.id, ShiftRow.status == "active")
            active = (await session.scalars(active_shifts)).all()
            if active and ({"slot_minutes", "timezone"} & changes.keys()):
                raise Problem(
                    409,
                    "event_has_shifts",
                    "Event has shifts",
                    "The slot length and timezone change only while the event has no active shifts.",
                )
            stranded = [str(shift.id) for shift in active if not domain.shift_fits(schedule, shift.start, shift.end)]
            if stranded:
                raise Problem(
                    409,
                    "shifts_outside_event",
                    "Shifts would not fit",
                    "Active shifts would fall outside the changed event; change or cancel them first.",
                    shift_ids=stranded,
                )
            if changes:
                event.sequence += 1
                data = event_data(event)
                uow.publish(EventUpdated.of(event.id, event.sequence, data))
            else:
                data = event_data(event)
        return data

    async def list_events(self, cursor: UUID | None, limit: int) -> list[EventData]:
        async with self._uow() as uow:
            query = select(EventRow).order_by(EventRow.id).limit(limit)
            if cursor:
                query = query.where(EventRow.id > cursor)
            return [event_data(row) for row in (await uow.session.scalars(query)).all()]

    async def get_event(self, event_id: UUID) -> EventData:
        async with self._uow() as uow:
            row = await uow.session.get(EventRow, event_id)
            if row is None:
                raise not_found("event")
            return event_data(row)

    async def add_blackout(self, event_id: UUID, spec: BlackoutIn) -> DailyBlackoutData | OneOffBlackoutData:
        if spec.start_time is not None:
            domain.check_window(spec.start_time, spec.end_time)
            row = BlackoutRow(kind="daily", start_time=spec.start_time, end_time=spec.end_time, reason=spec.reason)
        else:
            domain.check_window(spec.start, spec.end)
            row = BlackoutRow(kind="one_off", start=spec.start, end=spec.end, reason=spec.reason)
        async with self._uow() as uow:
            event = await self._lock_event(uow.session, event_id)
            event.blackouts.append(row)
            await uow.session.flush()
            uow.publish(BlackoutCreated.of(event.id, *self._event_change(event, row)))
        return blackout_data(row)

    async def delete_blackout(self, event_id: UUID, blackout_id: UUID) -> None:
        async with self._uow() as uow:
            event = await self._lock_event(uow.session, event_id)
            row = next((b for b in event.blackouts if b.id == blackout_id), None)
            if row is None:
                raise not_found("blackout")
            event.blackouts.remove(row)
            await uow.session.flush()
            uow.publish(BlackoutDeleted.of(event.id, *self._event_change(event, row)))

    async def _lock_event(self, session: AsyncSession, event_id: UUID) -> EventRow:
        event = await session.get(EventRow, event_id, with_for_update=True)
        if event is None:
            raise not_found("event")
        return event

    @staticmethod
    def _event_change(event: EventRow, blackout: BlackoutRow) -> tuple[int, BlackoutChangeData]:
        """A blackout changes its event: the event's next sequence, and the event with the blackout."""
        event.sequence += 1
        return event.sequence, BlackoutChangeData(**dict(event_data(event)), blackout=blackout_data(blackout))

    # -- professionals -------------------------------------------------------------------------

    async def record_professional(self, announced: Event[Person]) -> None:
        """The gateway announced a professional (created or changed): the newest announcement wins,
        so a redelivered or late one changes nothing."""
        async with self._uow() as uow:
            await uow.session.execute(_newest_professional(announced.data, announced.sequence))

    async def _known_professional(self, professional_id: UUID) -> bool:
        """Whether the directory has them; waits a moment for an announcement still on its way."""
        deadline = time.monotonic() + self._professional_wait
        while True:
            async with self._uow() as uow:
                if await uow.session.get(ProfessionalRow, professional_id) is not None:
                    return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)

    # -- shifts --------------------------------------------------------------------------------

    async def create_shift(self, who: Identity, spec: ShiftIn) -> ShiftData:
        professional_id = self._owner_for_new_shift(who, spec.professional_id)
        if who.role is Role.ADMIN and not await self._known_professional(professional_id):
            raise Problem(
                422,
                "unknown_professional",
                "Unknown professional",
                "No professional has that id here. One created a few seconds ago may not have reached the shifts "
                "service yet (it follows the accounts through events); try again in a moment.",
            )
        async with self._uow() as uow:
            session = uow.session
            event = await session.get(EventRow, spec.event_id)
            if event is None:
                raise Problem(422, "unknown_event", "Unknown event", "No event has that event_id.")
            domain.check_shift(event_data(event).schedule(), spec.start, spec.end, spec.capacity)
            if who.role is Role.PROFESSIONAL:
                # Their own token names them until the gateway's announcement arrives (it then wins).
                me = Person(id=who.id, name=who.name, email=who.email, timezone=who.timezone)
                await session.execute(_newest_professional(me, 0))
            row = ShiftRow(
                event_id=event.id,
                professional_id=professional_id,
                start=spec.start,
                end=spec.end,
                capacity=spec.capacity,
                status="active",
                sequence=1,
            )
            session.add(row)
            await self._flush_shift(session)
            await session.refresh(row, ["professional"])
            data = shift_data(row, event)
            uow.publish(ShiftCreated.of(row.id, row.sequence, data))
        return data

    async def list_shifts(self, who: Identity, event_id: UUID | None, cursor: UUID | None, limit: int) -> list[ShiftData]:
        async with self._uow() as uow:
            query = select(ShiftRow, EventRow).join(EventRow).order_by(ShiftRow.id).limit(limit)
            if who.role is not Role.ADMIN:
                query = query.where(ShiftRow.professional_id == who.id)
            if event_id:
                query = query.where(ShiftRow.event_id == event_id)
            if cursor:
                query = query.where(ShiftRow.id > cursor)
            return [shift_data(shift, event) for shift, event in (await uow.session.execute(query)).all()]

    async def get_shift(self, who: Identity, shift_id: UUID) -> ShiftData:
        async with self._uow() as uow:
            shift = await self._visible_shift(uow.session, who, shift_id)
            return shift_data(shift, await uow.session.get(EventRow, shift.event_id))

    async def change_shift(self, who: Identity, shift_id: UUID, patch: ShiftPatch) -> ShiftData:
        async with self._uow() as uow:
            session = uow.session
            shift = await self._visible_shift(session, who, shift_id, for_update=True)
            if shift.status != "active":
                raise Problem(409, "shift_cancelled", "Shift cancelled", "A cancelled shift cannot be changed.")
            event = await session.get(EventRow, shift.event_id)
            start, end = patch.start or shift.start, patch.end or shift.end
            capacity = patch.capacity or shift.capacity
            domain.check_shift(event_data(event).schedule(), start, end, capacity)
            shift.start, shift.end, shift.capacity = start, end, capacity
            shift.sequence += 1
            await self._flush_shift(session)
            data = shift_data(shift, event)
            uow.publish(ShiftUpdated.of(shift.id, shift.sequence, data))
        return data

    async def cancel_shift(self, who: Identity, shift_id: UUID) -> ShiftData:
        async with self._uow() as uow:
            shift = await self._visible_shift(uow.session, who, shift_id, for_update=True)
            event = await uow.session.get(EventRow, shift.event_id)
            if shift.status == "active":
                shift.status = "cancelled"
                shift.sequence += 1
                await uow.session.flush()
                data = shift_data(shift, event)
                uow.publish(ShiftCancelled.of(shift.id, shift.sequence, data))
            else:
                data = shift_data(shift, event)  # cancelling twice is harmless
        return data

    def _owner_for_new_shift(self, who: Identity, requested: UUID | None) -> UUID:
        if who.role is Role.ADMIN:
            if requested is None:
                raise Problem(422, "professional_required", "Professional required", "Admins must give professional_id.")
            return requested
        if requested is not None and requested != who.id:
            raise Problem(403, "forbidden", "Forbidden", "Professionals add only their own shifts.")
        return who.id

    async def _visible_shift(self, session: AsyncSession, who: Identity, shift_id: UUID, for_update: bool = False) -> ShiftRow:
        shift = await session.get(ShiftRow, shift_id, with_for_update=for_update)
        if shift is None or (who.role is not Role.ADMIN and shift.professional_id != who.id):
            raise not_found("shift")  # someone else's shift is as good as absent
        return shift

    async def _flush_shift(self, session: AsyncSession) -> None:
        try:
            await session.flush()
        except IntegrityError as exc:
            if "shifts_no_overlap" in str(exc.orig):
                raise Problem(409, "shift_overlap", "Overlapping shift", "The professional already has a shift then.") from exc
            raise


def _newest_professional(professional: Person, sequence: int):
    """Insert, or update where this sequence is newer than the one kept."""
    upsert = insert(ProfessionalRow).values(
        id=professional.id,
        name=professional.name,
        email=professional.email,
        timezone=professional.timezone,
        sequence=sequence,
    )
    return upsert.on_conflict_do_update(
        index_elements=[ProfessionalRow.id],
        set_={name: upsert.excluded[name] for name in ("name", "email", "timezone", "sequence")},
        where=ProfessionalRow.sequence < upsert.excluded.sequence,
    )
