"""Booking use cases. Capacity is taken in Redis first (one atomic script), then the booking and
its event are committed in PostgreSQL; a failed commit gives the capacity back."""

import asyncio
import hashlib
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from uuid import UUID, uuid4

import asyncpg
import orjson
from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from booking.adapters.db import BookingRow, ShiftRow
from booking.api import BookingIn
from booking.domain import Coverage, bookings_beyond_coverage
from common.auth import Identity, Role
from common.capacity import CapacityStore, Rebuilding, StaleEvent
from common.capacity.store import KnownEvent
from common.contracts import BookingData, BookingStatus, EventData, Person, ShiftData
from common.errors import Problem, not_found, try_again
from common.outbox import Outbox
from common.schedule import Slot

log = logging.getLogger(__name__)

# The booking transaction runs on plain asyncpg: it is the hot path, and SQLAlchemy's work per
# statement cost more CPU than the round trips (profiled; docs/benchmarks.md).
NEW_BOOKING_COLUMNS = (
    "id", "event_id", "event_name", "slot_start", "slot_end", "status", "client_id", "client_name", "client_email",
    "client_timezone", "professional_id", "professional_name", "professional_email", "professional_timezone", "unit",
    "assignment", "idempotency_key", "request_fingerprint", "sequence",
)  # fmt: skip
NEW_BOOKING = (
    f"INSERT INTO bookings ({', '.join(NEW_BOOKING_COLUMNS)}) VALUES "
    f"({', '.join(f'${n}::jsonb' if c == 'assignment' else f'${n}' for n, c in enumerate(NEW_BOOKING_COLUMNS, 1))})"
)
REBUILD_WAITS = 8  # takes tried while the event's counters are rebuilt: about 2.5 s in all


def booking_data(row: BookingRow, reason: str | None = None) -> BookingData:
    return BookingData(
        id=row.id,
        event_id=row.event_id,
        event_name=row.event_name,
        start=row.slot_start,
        end=row.slot_end,
        status=BookingStatus(row.status),
        client=Person(id=row.client_id, name=row.client_name, email=row.client_email, timezone=row.client_timezone),
        professional=Person(
            id=row.professional_id,
            name=row.professional_name,
            email=row.professional_email,
            timezone=row.professional_timezone,
        ),
        reason=reason,
    )


def _lock_id(client_id: UUID, key: str) -> int:
    """A signed 64-bit number for pg_advisory_xact_lock, the same for the same client and key."""
    return int.from_bytes(hashlib.blake2b(f"{client_id}:{key}".encode(), digest_size=8).digest(), "big", signed=True)


def fingerprint(request: BookingIn) -> str:
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()


def slot_unavailable(slot: Slot, open_slots: list[Slot]) -> Problem:
    """409 ``slot_unavailable``, offering the three open slots nearest to the one asked for."""
    later = [s for s in open_slots if s.start > datetime.now(UTC)]
    nearest = sorted(later, key=lambda s: abs((s.start - slot.start).total_seconds()))[:3]
    return Problem(
        409,
        "slot_unavailable",
        "Slot unavailable",
        "That slot is fully booked; pick another.",
        nearest_available=[{"start": s.start.isoformat(), "end": s.end.isoformat()} for s in sorted(nearest)],
    )


async def earlier_attempt(conn: asyncpg.Connection, client_id: UUID, key: str, request: BookingIn) -> BookingData | None:
    """Take the (client, key) lock for this transaction, then look for the booking an earlier
    attempt made: a retry racing the first attempt waits for its commit. (Two statements: one
    would read with a snapshot taken before the lock was granted, and miss that commit.)"""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_id(client_id, key))
    found = await conn.fetchrow("SELECT * FROM bookings WHERE client_id = $1 AND idempotency_key = $2", client_id, key)
    if found is None:
        return None
    if found["request_fingerprint"] != fingerprint(request):
        raise Problem(422, "idempotency_key_reused", "Idempotency-Key reused", "This key was used for a different request.")
    return booking_data(SimpleNamespace(**found))


async def insert_confirmed_booking(
    conn: asyncpg.Connection,
    booking_id: UUID,
    client: Identity,
    request: BookingIn,
    key: str | None,
    event: EventData,
    slot: Slot,
    professional: Person,
    unit: int,
    assignment: dict,
) -> BookingData:
    """The booking row, written in the caller's transaction, holding ``unit`` of ``professional``."""
    values = dict(
        id=booking_id,
        event_id=event.id,
        event_name=event.name,
        slot_start=slot.start,
        slot_end=slot.end,
        status=BookingStatus.CONFIRMED.value,
        client_id=client.id,
        client_name=client.name,
        client_email=request.email,
        client_timezone=client.timezone,
        professional_id=professional.id,
        professional_name=professional.name,
        professional_email=professional.email,
        professional_timezone=professional.timezone,
        unit=unit,
        assignment=orjson.dumps(assignment).decode(),
        idempotency_key=key,
        request_fingerprint=fingerprint(request),
        sequence=1,
    )
    await conn.execute(NEW_BOOKING, *(values[column] for column in NEW_BOOKING_COLUMNS))
    return booking_data(SimpleNamespace(**values))


class BookingService:
    def __init__(
        self,
        sessions: async_sessionmaker,
        pool: asyncpg.Pool,
        store: CapacityStore,
        outbox: Outbox,
        after_commit: Callable[[], None],
        hold_seconds: float,
    ) -> None:
        self._sessions = sessions
        self._pool = pool
        self._store = store
        self._outbox = outbox
        self._after_commit = after_commit
        self._hold_seconds = hold_seconds

    async def book(self, client: Identity, request: BookingIn, idempotency_key: str | None) -> tuple[BookingData, bool]:
        """Book a slot; returns the booking and whether it was created now (False: a retry).

        One transaction on one connection: with an ``Idempotency-Key`` it first takes an advisory
        lock on (client, key), so a retry racing the first attempt waits for its commit and then
        answers with its booking, instead of taking a second unit (or meeting a full slot)."""
        taken = known = slot = None
        booking_id, chance = uuid4(), random.random()
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                if idempotency_key and (earlier := await earlier_attempt(conn, client.id, idempotency_key, request)):
                    return earlier, False
                known, slot = await self._bookable_slot(request)
                for attempt in range(REBUILD_WAITS):
                    try:
                        taken = await self._store.take(known, slot, chance, booking_id, self._hold_seconds)
                        break
                    except StaleEvent:  # the event changed under us: check the slot against the new definition
                        known, slot = await self._bookable_slot(request)
                    except Rebuilding:  # a rebuild takes about a second: wait it out rather than fail the client
                        await asyncio.sleep(0.1 * min(attempt + 1, 5))
                else:
                    raise try_again("Availability is being rebuilt; try again in a moment.")
                if taken is None:
                    raise await self._unavailable(known, slot)
                assignment = {"eligible": taken.eligible, "random": chance}
                data = await insert_confirmed_booking(
                    conn,
                    booking_id,
                    client,
                    request,
                    idempotency_key,
                    known.data,
                    slot,
                    taken.professional,
                    taken.unit,
                    assignment,
                )
                await self._outbox.add_on(conn, "booking.confirmed", booking_id, 1, data.model_dump(mode="json"))
        except BaseException as exc:
            if taken is not None:
                # Not committed: give the unit back now (were this process to die here, the hold expires).
                await self._store.release(known, slot, taken.professional.id, taken.unit, booking_id)
            if isinstance(exc, asyncpg.UniqueViolationError) and exc.constraint_name == "bookings_one_per_unit":
                log.error("Redis handed out a unit PostgreSQL already holds: %s %s unit %s", known.data.id, slot.key, taken.unit)
                raise try_again("Availability is being corrected; try again in a moment.") from exc
            raise
        await self._store.confirm(known.data.id, booking_id)
        self._after_commit()
        return data, True

    async def _bookable_slot(self, request: BookingIn) -> tuple[KnownEvent, Slot]:
        known = await self._store.current_event(request.event_id)
        if known is None:
            if not await self._store.is_built():
                raise try_again("Availability is being rebuilt; try again in a moment.")
            raise Problem(422, "unknown_event", "Unknown event", "No event has that event_id.")
        schedule = known.schedule
        slot = schedule.slot_starting_at(request.start)
        if slot is None:
            day = schedule.event_day_of(request.start)
            if not schedule.start_date <= day <= schedule.end_date:
                raise Problem(422, "outside_event", "Outside the event", "The event does not run on that date.")
            raise Problem(422, "not_slot_start", "Not a slot start", "start must be the start of one of the event's slots.")
        if slot.start <= datetime.now(UTC):
            raise Problem(422, "slot_in_past", "Slot in the past", "That slot has already begun.")
        if schedule.is_blocked(slot):
            raise Problem(409, "slot_blocked", "Slot blocked", "That slot is blacked out.")
        return known, slot

    async def list_bookings(self, who: Identity, cursor: UUID | None, limit: int) -> list[BookingData]:
        async with self._sessions() as session:
            query = self._visible(select(BookingRow), who).order_by(BookingRow.slot_start, BookingRow.id).limit(limit)
            if cursor:
                after = select(BookingRow.slot_start, BookingRow.id).where(BookingRow.id == cursor).subquery()
                query = query.where(tuple_(BookingRow.slot_start, BookingRow.id) > select(after).scalar_subquery())
            return [booking_data(row) for row in (await session.scalars(query)).all()]

    async def get_booking(self, who: Identity, booking_id: UUID) -> tuple[BookingData, dict]:
        """The booking, and why its professional was chosen (shown to admins)."""
        async with self._sessions() as session:
            row = await self._visible_booking(session, who, booking_id)
            return booking_data(row), row.assignment

    async def cancel(self, who: Identity, booking_id: UUID) -> BookingData:
        async with self._sessions.begin() as session:
            row = await self._visible_booking(session, who, booking_id, for_update=True)
            if who.role is Role.PROFESSIONAL:
                raise not_found("booking")  # professionals see their appointments but do not cancel them
            if row.status == BookingStatus.CANCELLED.value:
                return booking_data(row)  # cancelling twice is harmless
            row.status = BookingStatus.CANCELLED.value
            row.sequence += 1
            row.updated_at = datetime.now(UTC)
            reason = "cancelled by the client" if who.role is Role.CLIENT else "cancelled by an admin"
            data = booking_data(row, reason)
            await self._outbox.add(session, "booking.cancelled", row.id, row.sequence, data.model_dump(mode="json"))
        # Committed: now give the unit back to the professional who had it.
        known = await self._store.event(row.event_id)
        if known is not None:
            await self._store.release(known, Slot(row.slot_start, row.slot_end), row.professional_id, row.unit, row.id)
        self._after_commit()
        return data

    async def usage(self, event_id: UUID | None) -> list[dict]:
        """The unit every confirmed booking holds: what availability rebuilds from."""
        query = select(
            BookingRow.id, BookingRow.event_id, BookingRow.slot_start, BookingRow.professional_id, BookingRow.unit
        ).where(BookingRow.status == BookingStatus.CONFIRMED.value)
        if event_id:
            query = query.where(BookingRow.event_id == event_id)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [
            {
                "booking_id": str(b),
                "event_id": str(e),
                "slot": str(int(start.timestamp())),
                "professional_id": str(pro),
                "unit": unit,
            }
            for b, e, start, pro, unit in rows
        ]

    async def distribution(self, event_id: UUID) -> dict:
        """Confirmed bookings per professional (and per event day), for auditing fair assignment."""
        query = select(BookingRow.professional_id, BookingRow.professional_name, BookingRow.slot_start).where(
            BookingRow.event_id == event_id, BookingRow.status == BookingStatus.CONFIRMED.value
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        known = await self._store.event(event_id)
        zone = known.schedule.zone if known else UTC
        professionals: dict[UUID, dict] = {}
        for pro_id, name, start in rows:
            entry = professionals.setdefault(pro_id, {"id": str(pro_id), "name": name, "bookings": 0, "by_day": {}})
            entry["bookings"] += 1
            day = start.astimezone(zone).date().isoformat()
            entry["by_day"][day] = entry["by_day"].get(day, 0) + 1
        counts = [p["bookings"] for p in professionals.values()]
        mean = sum(counts) / len(counts) if counts else 0
        return {
            "event_id": str(event_id),
            "professionals": sorted(professionals.values(), key=lambda p: p["name"]),
            "mean": mean,
            "largest_deviation_from_mean": max((abs(c - mean) for c in counts), default=0),
        }

    # -- shift changes ------------------------------------------------------------------------

    async def on_shift_changed(self, sequence: int, shift: ShiftData) -> None:
        """Keep the newest state of the shift; then move each booking it no longer covers to another
        professional with room, or keep it flagged ``needs_reschedule`` when nobody has room."""
        values = {
            "event_id": shift.event_id,
            "professional_id": shift.professional_id,
            "start": shift.start,
            "end": shift.end,
            "capacity": shift.capacity,
            "status": shift.status.value,
            "sequence": sequence,
        }
        upsert = insert(ShiftRow).values(id=shift.id, **values)
        upsert = upsert.on_conflict_do_update(
            index_elements=[ShiftRow.id], set_=values, where=ShiftRow.sequence < upsert.excluded.sequence
        )
        async with self._sessions.begin() as session:
            await session.execute(upsert)
        async with self._sessions() as session:
            bookings = (
                await session.scalars(
                    select(BookingRow).where(
                        BookingRow.event_id == shift.event_id,
                        BookingRow.professional_id == shift.professional_id,
                        BookingRow.status == BookingStatus.CONFIRMED.value,
                        BookingRow.slot_start > datetime.now(UTC),
                    )
                )
            ).all()
            active = (
                await session.scalars(
                    select(ShiftRow).where(
                        ShiftRow.event_id == shift.event_id,
                        ShiftRow.professional_id == shift.professional_id,
                        ShiftRow.status == "active",
                    )
                )
            ).all()
        coverage = [Coverage(s.start, s.end, s.capacity) for s in active]
        for booking in bookings_beyond_coverage(bookings, coverage):
            await self._reassign(booking)

    async def _reassign(self, booking: BookingRow) -> None:
        known = await self._store.event(booking.event_id)
        if known is None:
            return
        slot = Slot(booking.slot_start, booking.slot_end)
        chance = random.random()
        moved = await self._store.move(known, slot, booking.id, booking.professional_id, booking.unit, chance)
        async with self._sessions.begin() as session:
            row = await session.get(BookingRow, booking.id, with_for_update=True)
            if row is None or row.status != BookingStatus.CONFIRMED.value or row.professional_id != booking.professional_id:
                return  # someone else dealt with it meanwhile
            row.sequence += 1
            row.updated_at = datetime.now(UTC)
            if moved is not None:
                pro = moved.professional
                row.professional_id, row.professional_name = pro.id, pro.name
                row.professional_email, row.professional_timezone = pro.email, pro.timezone
                row.unit, row.assignment = moved.unit, {"eligible": moved.eligible, "random": chance, "reassigned": True}
                kind, reason = "booking.reassigned", "the professional's shift changed; another professional takes it"
            else:
                row.status = BookingStatus.NEEDS_RESCHEDULE.value
                kind, reason = "booking.needs_reschedule", "the professional's shift changed and nobody else is free then"
            data = booking_data(row, reason)
            await self._outbox.add(session, kind, row.id, row.sequence, data.model_dump(mode="json"))
        if moved is None:
            await self._store.release(known, slot, booking.professional_id, booking.unit, booking.id)
        self._after_commit()
        log.info("%s %s (%s)", kind, booking.id, reason)

    async def _unavailable(self, known: KnownEvent, slot: Slot) -> Problem:
        """409 ``slot_unavailable``, offering the nearest slots of the same day that still have room."""
        day = known.schedule.event_day_of(slot.start)
        counts = await self._store.day_counts(known.data.id, day)
        open_slots = (
            [s for s, left in zip(counts.slots, counts.remaining, strict=True) if left > 0 and not known.schedule.is_blocked(s)]
            if counts
            else []
        )
        return slot_unavailable(slot, open_slots)

    def _visible(self, query, who: Identity):
        if who.role is Role.CLIENT:
            return query.where(BookingRow.client_id == who.id)
        if who.role is Role.PROFESSIONAL:
            return query.where(BookingRow.professional_id == who.id)
        return query

    async def _visible_booking(
        self, session: AsyncSession, who: Identity, booking_id: UUID, for_update: bool = False
    ) -> BookingRow:
        query = self._visible(select(BookingRow).where(BookingRow.id == booking_id), who)
        row = await session.scalar(query.with_for_update() if for_update else query)
        if row is None:
            raise not_found("booking")  # someone else's booking is as good as absent
        return row
