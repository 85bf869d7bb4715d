"""The booking service's one way to its tables: plain asyncpg, prepared statements.

Its hot path (a booking's three round trips) is measured on asyncpg, where SQLAlchemy's work per
statement cost more than the round trip itself (docs/benchmarks.md); so the whole service reaches
its tables here, on one driver. The SQLAlchemy models in ``adapters/db.py`` only declare the
schema, for the migrations.
"""

import hashlib
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from booking.adapters.counters import EventRecord, UnitInUse
from booking.domain import Appointment, Booking, Coverage, WaitlistEntry
from common.auth import Identity
from common.contracts import EventData, ShiftData
from common.events import BookingEvent
from common.outbox import outbox_values
from common.roles import Role
from common.unit_of_work import ConnectionUnitOfWork

COLUMN_TYPES = {
    "id": "uuid", "event_id": "uuid", "event_name": "text", "slot_start": "timestamptz", "slot_end": "timestamptz",
    "status": "text", "client_id": "uuid", "client_name": "text", "client_email": "text", "client_timezone": "text",
    "professional_id": "uuid", "professional_name": "text", "professional_email": "text",
    "professional_timezone": "text", "unit": "int", "assignment": "jsonb", "idempotency_key": "text",
    "request_fingerprint": "text", "sequence": "int", "reminder_at": "timestamptz",
}  # fmt: skip
COLUMNS = tuple(COLUMN_TYPES)
assert COLUMNS == tuple(f.name for f in fields(Booking)), "a booking's fields are the table's columns"

_N = len(COLUMNS)
_P = {column: f"${n}" for n, column in enumerate(COLUMNS, 1)}
# One statement, so one round trip: the booking row only where the record gives its unit (the
# event definition it was checked against is current, and the unit is within its professional's
# active capacity in the slot), and its outbox row only where the booking was written.
NEW_BOOKING = f"""
WITH room AS (
    SELECT 1 FROM event_definitions e
    WHERE e.id = {_P["event_id"]}::uuid AND e.sequence <= ${_N + 1}::int
      AND {_P["unit"]}::int <= (
          SELECT COALESCE(SUM(s.capacity), 0) FROM shifts s
          WHERE s.event_id = {_P["event_id"]}::uuid AND s.professional_id = {_P["professional_id"]}::uuid
            AND s.status = 'active' AND s.start <= {_P["slot_start"]}::timestamptz
            AND s."end" >= {_P["slot_end"]}::timestamptz)
), booked AS (
    INSERT INTO bookings ({", ".join(COLUMNS)})
    SELECT {", ".join(f"{_P[c]}::{t}" for c, t in COLUMN_TYPES.items())} FROM room
    RETURNING id
)
INSERT INTO outbox (event_id, exchange, envelope, trace_context)
SELECT ${_N + 2}::uuid, ${_N + 3}::text, ${_N + 4}::jsonb, ${_N + 5}::jsonb FROM booked
RETURNING event_id
"""
FEED_LIMIT = 1000  # appointments in one calendar feed, at most
SELECT_BOOKINGS = f"SELECT {', '.join(COLUMNS)} FROM bookings"
# A viewer sees their own: a client the bookings they made, a professional those assigned to them.
VISIBLE = "($2::uuid IS NULL OR client_id = $2) AND ($3::uuid IS NULL OR professional_id = $3)"
SAVE = """
UPDATE bookings SET status = $2, professional_id = $3, professional_name = $4, professional_email = $5,
    professional_timezone = $6, unit = $7, assignment = $8, sequence = $9, updated_at = now()
WHERE id = $1
"""
MOVE = """
UPDATE bookings SET slot_start = $2, slot_end = $3, status = 'confirmed', professional_id = $4, professional_name = $5,
    professional_email = $6, professional_timezone = $7, unit = $8, assignment = $9, sequence = $10, reminder_at = $13,
    updated_at = now()
WHERE id = $1 AND EXISTS (
    SELECT 1 FROM event_definitions e
    WHERE e.id = $11 AND e.sequence <= $12
      AND $8 <= (
          SELECT COALESCE(SUM(s.capacity), 0) FROM shifts s
          WHERE s.event_id = $11 AND s.professional_id = $4 AND s.status = 'active' AND s.start <= $2 AND s."end" >= $3))
"""
NEWEST_EVENT = """
INSERT INTO event_definitions (id, sequence, doc) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET sequence = EXCLUDED.sequence, doc = EXCLUDED.doc
WHERE event_definitions.sequence < EXCLUDED.sequence
"""
NEWEST_SHIFT = """
INSERT INTO shifts (id, event_id, professional_id, start, "end", capacity, status, sequence, doc)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (id) DO UPDATE SET event_id = EXCLUDED.event_id, professional_id = EXCLUDED.professional_id,
    start = EXCLUDED.start, "end" = EXCLUDED."end", capacity = EXCLUDED.capacity, status = EXCLUDED.status,
    sequence = EXCLUDED.sequence, doc = EXCLUDED.doc
WHERE shifts.sequence < EXCLUDED.sequence
"""


WAITLIST_COLUMNS = tuple(f.name for f in fields(WaitlistEntry))
SELECT_WAITLIST = f"SELECT {', '.join(WAITLIST_COLUMNS)} FROM waitlist"
_W = ", ".join(f"${n}" for n in range(1, len(WAITLIST_COLUMNS) + 1))
NEW_WAITLIST_ENTRY = f"INSERT INTO waitlist ({', '.join(WAITLIST_COLUMNS)}) VALUES ({_W})"

LOCK_TIMEOUT = "2s"  # a booking waits at most this long for a capacity change of its event


def advisory_key(name: str) -> int:
    """A PostgreSQL advisory lock's key (a signed 64-bit number) for a lock named ``name``."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def event_lock(event_id: UUID) -> int:
    """The advisory lock that orders an event's bookings (shared) after or before the changes that
    take its capacity away (exclusive)."""
    return advisory_key(f"capacity:{event_id}")


def duty_lock(name: str) -> int:
    """The lock of a duty one instance at a time does (``Repository.try_duty``)."""
    return advisory_key(f"duty:{name}")


def begin_shared(event_id: UUID) -> str:
    """BEGIN and the event's shared lock in one round trip (a simple query: a literal, no parameters)."""
    return f"BEGIN; SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'; SELECT pg_advisory_xact_lock_shared({event_lock(event_id)})"


def _booking(row: asyncpg.Record) -> Booking:
    return Booking(**dict(row.items()))


def viewable_by(who: Identity | None) -> tuple[UUID | None, UUID | None]:
    """(client, professional) a viewer's bookings are limited to; admins and services see all."""
    if who is not None and who.role is Role.CLIENT:
        return who.id, None
    if who is not None and who.role is Role.PROFESSIONAL:
        return None, who.id
    return None, None


class Repository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._c = connection

    async def lock_event(self, event_id: UUID, exclusive: bool) -> None:
        """The event's advisory lock, to the end of the transaction."""
        await self._c.execute(f"SELECT pg_advisory_xact_lock{'' if exclusive else '_shared'}($1)", event_lock(event_id))

    async def try_duty(self, name: str) -> bool:
        """A lock of the whole service's, to the end of the transaction, for a duty one instance at a
        time does (rebuilding everything, reconciling): False when another instance holds it."""
        return await self._c.fetchval("SELECT pg_try_advisory_xact_lock($1)", duty_lock(name))

    # -- bookings ---------------------------------------------------------------------------------

    async def add_confirmed(self, booking: Booking, definition_sequence: int, event: BookingEvent) -> bool:
        """The booking and its event's outbox row, where the record gives the booking's unit; False
        (nothing written) where it does not."""
        values = (getattr(booking, c) for c in COLUMNS)
        return await self._c.fetchval(NEW_BOOKING, *values, definition_sequence, *outbox_values(event)) is not None

    async def booking(self, booking_id: UUID, viewer: Identity | None = None, lock: bool = False) -> Booking | None:
        """The booking, if ``viewer`` may see it; ``lock``: read afresh and locked for update."""
        query = f"{SELECT_BOOKINGS} WHERE id = $1 AND {VISIBLE}{' FOR UPDATE' if lock else ''}"
        row = await self._c.fetchrow(query, booking_id, *viewable_by(viewer))
        return _booking(row) if row else None

    async def booking_for_key(self, client_id: UUID, idempotency_key: str) -> Booking | None:
        query = f"{SELECT_BOOKINGS} WHERE client_id = $1 AND idempotency_key = $2"
        row = await self._c.fetchrow(query, client_id, idempotency_key)
        return _booking(row) if row else None

    async def has_booking(self, booking_id: UUID) -> bool:
        return await self._c.fetchval("SELECT count(*) FROM bookings WHERE id = $1", booking_id) == 1

    async def bookings_of(self, viewer: Identity, cursor: UUID | None, limit: int) -> list[Booking]:
        """The viewer's bookings by slot (then id), after ``cursor``'s."""
        after = "AND (slot_start, id) > (SELECT slot_start, id FROM bookings WHERE id = $4)" if cursor else ""
        query = f"{SELECT_BOOKINGS} WHERE {VISIBLE} {after} ORDER BY slot_start, id LIMIT $1"
        rows = await self._c.fetch(query, limit, *viewable_by(viewer), *([cursor] if cursor else []))
        return [_booking(row) for row in rows]

    async def save(self, booking: Booking) -> None:
        """A booking's changed status, professional, unit, assignment and sequence."""
        b = booking
        await self._c.execute(
            SAVE, b.id, b.status, b.professional_id, b.professional_name, b.professional_email,
            b.professional_timezone, b.unit, b.assignment, b.sequence,
        )  # fmt: skip

    async def move(self, booking: Booking, definition_sequence: int) -> bool:
        """The booking at its new slot, professional and unit, where the record gives that unit
        (as for a new booking); False (nothing written) where it does not."""
        b = booking
        done = await self._c.execute(
            MOVE, b.id, b.slot_start, b.slot_end, b.professional_id, b.professional_name, b.professional_email,
            b.professional_timezone, b.unit, b.assignment, b.sequence, b.event_id, definition_sequence, b.reminder_at,
        )  # fmt: skip
        return done == "UPDATE 1"

    async def reschedule_for_key(self, booking_id: UUID, idempotency_key: str) -> str | None:
        """The fingerprint of the reschedule made with this key, if one was."""
        query = "SELECT request_fingerprint FROM reschedules WHERE booking_id = $1 AND idempotency_key = $2"
        return await self._c.fetchval(query, booking_id, idempotency_key)

    async def remember_reschedule(self, booking_id: UUID, idempotency_key: str, fingerprint: str) -> None:
        await self._c.execute(
            "INSERT INTO reschedules (booking_id, idempotency_key, request_fingerprint) VALUES ($1, $2, $3)",
            booking_id, idempotency_key, fingerprint,
        )  # fmt: skip

    # -- the waitlist -----------------------------------------------------------------------------

    async def add_waiting(self, entry: WaitlistEntry) -> bool:
        """False (nothing written) when the client waits for that slot already."""
        try:
            await self._c.execute(NEW_WAITLIST_ENTRY, *(getattr(entry, c) for c in WAITLIST_COLUMNS))
        except asyncpg.UniqueViolationError:
            return False
        return True

    async def waitlist_entry(self, entry_id: UUID, client_id: UUID | None = None, lock: bool = False) -> WaitlistEntry | None:
        """The entry (only if it is ``client_id``'s, when given); ``lock``: locked for update."""
        query = f"{SELECT_WAITLIST} WHERE id = $1 AND ($2::uuid IS NULL OR client_id = $2){' FOR UPDATE' if lock else ''}"
        row = await self._c.fetchrow(query, entry_id, client_id)
        return WaitlistEntry(**dict(row.items())) if row else None

    async def active_entry(self, client_id: UUID, event_id: UUID, slot_start: datetime) -> WaitlistEntry | None:
        active = "status IN ('waiting', 'offered')"
        query = f"{SELECT_WAITLIST} WHERE client_id = $1 AND event_id = $2 AND slot_start = $3 AND {active}"
        row = await self._c.fetchrow(query, client_id, event_id, slot_start)
        return WaitlistEntry(**dict(row.items())) if row else None

    async def entries_of(self, client_id: UUID) -> list[WaitlistEntry]:
        rows = await self._c.fetch(f"{SELECT_WAITLIST} WHERE client_id = $1 ORDER BY slot_start, created_at", client_id)
        return [WaitlistEntry(**dict(row.items())) for row in rows]

    async def entries(self, entry_ids: list[UUID], lock: bool = False) -> list[WaitlistEntry]:
        query = f"{SELECT_WAITLIST} WHERE id = ANY($1::uuid[]) ORDER BY id{' FOR UPDATE' if lock else ''}"
        return [WaitlistEntry(**dict(row.items())) for row in await self._c.fetch(query, entry_ids)]

    async def save_entry(self, entry: WaitlistEntry) -> None:
        await self._c.execute(
            "UPDATE waitlist SET status = $2, offer_expires_at = $3, sequence = $4 WHERE id = $1",
            entry.id, entry.status, entry.offer_expires_at, entry.sequence,
        )  # fmt: skip

    async def waiting(self, event_id: UUID) -> dict[str, list[UUID]]:
        """Each slot's waitlist as the record has it (offers outstanding first, then by joining):
        what the counters' ``waiting`` is built from after Redis lost them."""
        rows = await self._c.fetch(
            "SELECT id, slot_start FROM waitlist WHERE event_id = $1 AND status IN ('waiting', 'offered') "
            "ORDER BY slot_start, status = 'waiting', created_at, id",
            event_id,
        )
        found: dict[str, list[UUID]] = {}
        for row in rows:
            found.setdefault(str(int(row["slot_start"].timestamp())), []).append(row["id"])
        return found

    # -- calendar feeds ---------------------------------------------------------------------------

    async def replace_feed(self, person_id: UUID, role: Role, token_hash: str) -> None:
        """The person's feed, by its token's hash: a new one replaces theirs (its URL stops working)."""
        await self._c.execute(
            "INSERT INTO calendar_feeds (person_id, role, token_hash) VALUES ($1, $2, $3) ON CONFLICT (person_id) "
            "DO UPDATE SET role = EXCLUDED.role, token_hash = EXCLUDED.token_hash, created_at = now()",
            person_id, role.value, token_hash,
        )  # fmt: skip

    async def drop_feed(self, person_id: UUID) -> bool:
        return await self._c.execute("DELETE FROM calendar_feeds WHERE person_id = $1", person_id) == "DELETE 1"

    async def feed_owner(self, token_hash: str) -> tuple[UUID, Role] | None:
        row = await self._c.fetchrow("SELECT person_id, role FROM calendar_feeds WHERE token_hash = $1", token_hash)
        return (row["person_id"], Role(row["role"])) if row else None

    async def appointments_of(self, person_id: UUID, role: Role, since: datetime) -> list[Appointment]:
        """A person's confirmed bookings (a client's own, a professional's assigned) ending after
        ``since``, by slot."""
        mine, other = ("client_id", "professional_name") if role is Role.CLIENT else ("professional_id", "client_name")
        rows = await self._c.fetch(
            f"SELECT id, event_name, slot_start, slot_end, {other} AS other, sequence, updated_at FROM bookings "
            f"WHERE {mine} = $1 AND status = 'confirmed' AND slot_end > $2 ORDER BY slot_start, id LIMIT {FEED_LIMIT}",
            person_id, since,
        )  # fmt: skip
        return [
            Appointment(r["id"], r["event_name"], r["slot_start"], r["slot_end"], r["other"], r["sequence"], r["updated_at"])
            for r in rows
        ]

    async def units_held(self, event_id: UUID) -> list[UnitInUse]:
        """The unit every confirmed booking of the event holds."""
        rows = await self._c.fetch(
            "SELECT id, slot_start, professional_id, unit FROM bookings WHERE status = 'confirmed' AND event_id = $1",
            event_id,
        )
        return [UnitInUse(str(int(start.timestamp())), pro, unit, b) for b, start, pro, unit in rows]

    async def recorded(self, booking_ids: list[UUID]) -> set[UUID]:
        """Which of ``booking_ids`` the record holds (committed, whatever their status now)."""
        return {row["id"] for row in await self._c.fetch("SELECT id FROM bookings WHERE id = ANY($1::uuid[])", booking_ids)}

    async def confirmed_slots(self, event_id: UUID) -> list[asyncpg.Record]:
        """(professional_id, professional_name, slot_start) of an event's confirmed bookings."""
        return await self._c.fetch(
            "SELECT professional_id, professional_name, slot_start FROM bookings WHERE event_id = $1 AND status = 'confirmed'",
            event_id,
        )

    # -- the capacity record: events and shifts as announced, newest sequence kept ----------------

    async def keep_newest_event(self, definition: EventData, sequence: int) -> None:
        await self._c.execute(NEWEST_EVENT, definition.id, sequence, definition.model_dump(mode="json"))

    async def keep_newest_shift(self, shift: ShiftData, sequence: int) -> None:
        await self._c.execute(
            NEWEST_SHIFT, shift.id, shift.event_id, shift.professional_id, shift.start, shift.end, shift.capacity,
            shift.status.value, sequence, shift.model_dump(mode="json"),
        )  # fmt: skip

    async def event_definition(self, event_id: UUID) -> EventData | None:
        doc = await self._c.fetchval("SELECT doc FROM event_definitions WHERE id = $1", event_id)
        return EventData.model_validate(doc) if doc is not None else None

    async def confirmed(
        self, event_id: UUID, professional: UUID | None = None, future_only: bool = False, lock: bool = False
    ) -> list[Booking]:
        """An event's confirmed bookings (of one professional), upcoming ones only, locked for update."""
        query = (
            f"{SELECT_BOOKINGS} WHERE event_id = $1 AND status = 'confirmed' AND ($2::uuid IS NULL OR professional_id = $2)"
            f" AND ($3::timestamptz IS NULL OR slot_start > $3){' FOR UPDATE' if lock else ''}"
        )
        rows = await self._c.fetch(query, event_id, professional, datetime.now(UTC) if future_only else None)
        return [_booking(row) for row in rows]

    async def coverage(self, event_id: UUID) -> list[Coverage]:
        rows = await self._c.fetch(
            """SELECT professional_id, start, "end", capacity FROM shifts WHERE event_id = $1 AND status = 'active'""", event_id
        )
        return [Coverage(*row) for row in rows]

    async def capacity_record(self, event_id: UUID) -> EventRecord | None:
        """The event as applied here, with its sequence and its shifts: what its counters are built
        from. None when no definition of it has arrived yet."""
        event = await self._c.fetchrow("SELECT sequence, doc FROM event_definitions WHERE id = $1", event_id)
        if event is None:
            return None
        shifts = await self._c.fetch(
            "SELECT sequence, doc FROM shifts WHERE event_id = $1 AND doc IS NOT NULL ORDER BY id", event_id
        )
        return EventRecord(
            event["sequence"],
            EventData.model_validate(event["doc"]),
            [(s["sequence"], ShiftData.model_validate(s["doc"])) for s in shifts],
        )

    async def defined_events(self) -> list[UUID]:
        """Every event the record has a definition of: those that have counters."""
        return [row["id"] for row in await self._c.fetch("SELECT id FROM event_definitions ORDER BY id")]

    async def event_ids(self) -> list[UUID]:
        """Every event the record defines or holds bookings of."""
        rows = await self._c.fetch("SELECT id FROM event_definitions UNION SELECT DISTINCT event_id FROM bookings")
        return sorted((row["id"] for row in rows), key=str)


class BookingUnitOfWork(ConnectionUnitOfWork):
    """A unit of work on the booking service's pool, with its repository (``uow.record``)."""

    record: Repository

    async def _begin(self) -> None:
        await super()._begin()
        self.record = Repository(self.connection)


def units_of_work(pool: asyncpg.Pool, wake_relay: Callable[[], None]) -> Callable[..., BookingUnitOfWork]:
    """``units_of_work()`` for a plain transaction; ``units_of_work(shared_lock=event_id)`` to open it
    holding the event's shared lock, in the same round trip as BEGIN."""

    def new(shared_lock: UUID | None = None) -> BookingUnitOfWork:
        return BookingUnitOfWork(pool, wake_relay, begin_shared(shared_lock) if shared_lock else "BEGIN")

    return new
