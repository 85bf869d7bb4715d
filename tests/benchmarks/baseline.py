"""The baseline the Redis design is measured against: what most booking systems do, in PostgreSQL only.

One transaction per booking: lock the slot's capacity rows (``SELECT … FOR UPDATE``), choose the
professional with capacity and the fewest bookings that day, count the unit taken, insert the
booking and its outbox row. Availability is a ``GROUP BY`` over the same rows.

It is built from the product's public seams only, so nothing in the product is shaped by it: the
API's request and answer models and answers (``booking.api``, ``availability.api``), the shared skeleton,
endpoint declaration, token checks and unit of work (``common``), the booking service's
migrations (its table, with the one-booking-per-unit guard) and the event contract
(``common.events``). Everything else is its own. It lives with the benchmarks, never in the product.

    python -m tests.benchmarks.baseline [serve|prepare]
"""

import asyncio
import hashlib
import random
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
from aiohttp import web
from sqlalchemy import Column, Date, DateTime, Integer, MetaData, PrimaryKeyConstraint, String, Table, Uuid
from sqlalchemy.dialects.postgresql import JSONB, insert

import booking
from availability.api import AvailabilityQuery, day_answer
from booking.api import BookingIn, booking_out, key_reused, slot_unavailable
from common import web as common_web
from common.auth import Identity
from common.contracts import BookingData, BookingStatus, EventData, Person
from common.db import create_engine
from common.endpoints import Call, Endpoints, Header
from common.errors import Problem, not_found
from common.events import BookingConfirmed
from common.roles import Role
from common.schedule import Schedule, Slot, zone_named
from common.settings import ServiceSettings
from common.unit_of_work import ConnectionUnitOfWork

metadata = MetaData()
events = Table("baseline_events", metadata, Column("id", Uuid, primary_key=True), Column("definition", JSONB, nullable=False))
professionals = Table(
    "baseline_professionals",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("email", String(320)),
    Column("timezone", String(64), nullable=False),
)
capacity = Table(  # one row per slot and professional: the counters, as rows
    "baseline_capacity",
    metadata,
    Column("event_id", Uuid, nullable=False),
    Column("slot_start", DateTime(timezone=True), nullable=False),
    Column("professional_id", Uuid, nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("booked", Integer, nullable=False, server_default="0"),
    PrimaryKeyConstraint("event_id", "slot_start", "professional_id"),
)
day_load = Table(  # bookings per professional and event day: what the fair pick reads
    "baseline_day_load",
    metadata,
    Column("event_id", Uuid, nullable=False),
    Column("day", Date, nullable=False),
    Column("professional_id", Uuid, nullable=False),
    Column("bookings", Integer, nullable=False),
    PrimaryKeyConstraint("event_id", "day", "professional_id"),
)

LOCK_SLOT = """SELECT c.professional_id, c.capacity - c.booked AS free, coalesce(l.bookings, 0) AS load
       FROM baseline_capacity c
       LEFT JOIN baseline_day_load l ON l.event_id = c.event_id AND l.day = $3 AND l.professional_id = c.professional_id
       WHERE c.event_id = $1 AND c.slot_start = $2
       ORDER BY c.professional_id
       FOR UPDATE OF c"""
TAKE_UNIT = """UPDATE baseline_capacity SET booked = booked + 1
       WHERE event_id = $1 AND slot_start = $2 AND professional_id = $3
       RETURNING booked"""
COUNT_DAY_LOAD = """INSERT INTO baseline_day_load (event_id, day, professional_id, bookings) VALUES ($1, $2, $3, 1)
    ON CONFLICT (event_id, day, professional_id) DO UPDATE SET bookings = baseline_day_load.bookings + 1"""
DAY_COUNTS = """SELECT slot_start, sum(capacity), sum(capacity - booked) FROM baseline_capacity
       WHERE event_id = $1 AND slot_start >= $2 AND slot_start <= $3 GROUP BY slot_start"""


class Settings(ServiceSettings):
    service_name: str = "baseline"
    http_port: int = 8090
    database_url: str = "postgresql://postgres@127.0.0.1:5432/baseline"


class Catalogue:
    """Event definitions and professionals: read once per process, as the booking service caches them."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._events: dict[UUID, tuple[EventData, Schedule]] = {}
        self._professionals: dict[UUID, Person] = {}

    async def event(self, event_id: UUID) -> tuple[EventData, Schedule] | None:
        if event_id not in self._events:
            definition = await self._pool.fetchval("SELECT definition FROM baseline_events WHERE id = $1", event_id)
            if definition is None:
                return None
            data = EventData.model_validate(definition)
            self._events[event_id] = (data, data.schedule())
        return self._events[event_id]

    async def professional(self, conn: asyncpg.Connection, professional_id: UUID) -> Person:
        if professional_id not in self._professionals:
            row = await conn.fetchrow("SELECT * FROM baseline_professionals WHERE id = $1", professional_id)
            self._professionals[professional_id] = Person.model_validate(dict(row))
        return self._professionals[professional_id]


# The booking table's row (its schema is the booking service's migrations); PostgreSQL alone has
# no other record to check it against.
BOOKING_COLUMNS = (
    "id", "event_id", "event_name", "slot_start", "slot_end", "status", "client_id", "client_name", "client_email",
    "client_timezone", "professional_id", "professional_name", "professional_email", "professional_timezone", "unit",
    "assignment", "idempotency_key", "request_fingerprint", "sequence",
)  # fmt: skip
INSERT_BOOKING = f"INSERT INTO bookings ({', '.join(BOOKING_COLUMNS)}) VALUES ({', '.join(f'${n}' for n in range(1, 20))})"


def fingerprint(request: BookingIn) -> str:
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()


def booking_of(row: asyncpg.Record | dict) -> BookingData:
    return BookingData(
        id=row["id"],
        event_id=row["event_id"],
        event_name=row["event_name"],
        start=row["slot_start"],
        end=row["slot_end"],
        status=BookingStatus(row["status"]),
        client=Person(id=row["client_id"], name=row["client_name"], email=row["client_email"], timezone=row["client_timezone"]),
        professional=Person(
            id=row["professional_id"],
            name=row["professional_name"],
            email=row["professional_email"],
            timezone=row["professional_timezone"],
        ),
    )


async def earlier_attempt(conn: asyncpg.Connection, client_id: UUID, key: str, fp: str) -> BookingData | None:
    """What a PostgreSQL-only system does with an Idempotency-Key: take a (client, key) lock for the
    transaction, then look for the booking an earlier attempt made (two statements: one would read
    with a snapshot taken before the lock was granted)."""
    lock = int.from_bytes(hashlib.blake2b(f"{client_id}:{key}".encode(), digest_size=8).digest(), "big", signed=True)
    await conn.execute("SELECT pg_advisory_xact_lock($1)", lock)
    found = await conn.fetchrow("SELECT * FROM bookings WHERE client_id = $1 AND idempotency_key = $2", client_id, key)
    if found is None:
        return None
    if found["request_fingerprint"] != fp:
        raise key_reused()
    return booking_of(found)


class BaselineBooking:
    def __init__(self, pool: asyncpg.Pool, catalogue: Catalogue, wake_relay: Callable[[], None]) -> None:
        self._pool, self._catalogue, self._wake_relay = pool, catalogue, wake_relay

    async def book(self, client: Identity, request: BookingIn, key: str | None) -> tuple[BookingData, bool]:
        booking_id, chance, fp = uuid4(), random.random(), fingerprint(request)
        # Checked before the transaction, as the product does: the catalogue may read from the same
        # pool, and a transaction waiting for a second connection of it would wait for ever.
        event, schedule, slot = await self._bookable_slot(request)
        async with ConnectionUnitOfWork(self._pool, self._wake_relay) as uow:
            conn = uow.connection
            if key and (earlier := await earlier_attempt(conn, client.id, key, fp)):
                return earlier, False
            day = schedule.event_day_of(slot.start)
            # The capacity step: lock the slot's rows, pick the least-loaded professional with room.
            rows = await conn.fetch(LOCK_SLOT, event.id, slot.start, day)
            open_rows = [r for r in rows if r["free"] > 0]
            if not open_rows:
                raise await self._unavailable(conn, schedule, event.id, slot)
            fewest = min(r["load"] for r in open_rows)
            least_loaded = [r for r in open_rows if r["load"] == fewest]
            chosen = least_loaded[min(int(chance * len(least_loaded)), len(least_loaded) - 1)]["professional_id"]
            unit = await conn.fetchval(TAKE_UNIT, event.id, slot.start, chosen)
            await conn.execute(COUNT_DAY_LOAD, event.id, day, chosen)
            pro = await self._catalogue.professional(conn, chosen)
            row = (
                booking_id, event.id, event.name, slot.start, slot.end, BookingStatus.CONFIRMED.value, client.id,
                client.name, request.email, client.timezone, pro.id, pro.name, pro.email, pro.timezone, unit,
                {"eligible": len(open_rows), "random": chance}, key, fp, 1,
            )  # fmt: skip
            await conn.execute(INSERT_BOOKING, *row)
            data = booking_of(dict(zip(BOOKING_COLUMNS, row, strict=True)))
            uow.publish(BookingConfirmed.of(booking_id, 1, data))
        return data, True

    async def _bookable_slot(self, request: BookingIn) -> tuple[EventData, Schedule, Slot]:
        known = await self._catalogue.event(request.event_id)
        if known is None:
            raise Problem(422, "unknown_event", "Unknown event", "No event has that event_id.")
        event, schedule = known
        slot = schedule.slot_starting_at(request.start)
        if slot is None:
            raise Problem(422, "not_slot_start", "Not a slot start", "start must be the start of one of the event's slots.")
        if slot.start <= datetime.now(UTC):
            raise Problem(422, "slot_in_past", "Slot in the past", "That slot has already begun.")
        if schedule.is_blocked(slot):
            raise Problem(409, "slot_blocked", "Slot blocked", "That slot is blacked out.")
        return event, schedule, slot

    async def _unavailable(self, conn: asyncpg.Connection, schedule: Schedule, event_id: UUID, slot: Slot) -> Problem:
        """The same 409 as the booking service, with the nearest open slots of the day."""
        day = schedule.event_day_of(slot.start)
        slots = schedule.slots_on_local_day(day, schedule.zone)
        counts = await day_counts(conn, event_id, slots)
        open_slots = [s for s, (_, left) in zip(slots, counts, strict=True) if left > 0 and not schedule.is_blocked(s)]
        return slot_unavailable(slot, open_slots)


async def day_counts(conn: asyncpg.Connection, event_id: UUID, slots) -> list[tuple[int, int]]:
    if not slots:
        return []
    found = {
        start: (int(total), int(left))
        for start, total, left in await conn.fetch(DAY_COUNTS, event_id, slots[0].start, slots[-1].start)
    }
    return [found.get(s.start, (0, 0)) for s in slots]


CATALOGUE = web.AppKey("catalogue", Catalogue)
BOOKINGS = web.AppKey("baseline_bookings", BaselineBooking)
api = Endpoints()


@api.post("/bookings", "Book", roles=(Role.CLIENT,), body=BookingIn, headers=(Header("Idempotency-Key"),))
async def book(request: web.Request, call: Call[BookingIn, None]) -> web.Response:
    booking, created = await request.app[BOOKINGS].book(call.caller, call.body, call.headers["Idempotency-Key"])
    return common_web.json_response(booking_out(booking, call.caller), status=201 if created else 200)


@api.get("/availability", "A day's slots", query=AvailabilityQuery)
async def availability(request: web.Request, call: Call[None, AvailabilityQuery]) -> web.Response:
    query = call.query
    known = await request.app[CATALOGUE].event(query.event_id)
    if known is None:
        raise not_found("event")
    event, schedule = known
    zone_name = query.tz or (call.who.timezone if call.who else None)
    zone = zone_named(zone_name) if zone_name else schedule.zone
    slots = schedule.slots_on_local_day(query.date, zone)
    async with request.app[common_web.PG_POOL].acquire() as conn:
        counts = await day_counts(conn, query.event_id, slots)
    answer = day_answer(event, schedule, query.date, zone, [c for c, _ in counts], [r for _, r in counts])
    return common_web.json_response(answer)


def create_app(settings: Settings) -> web.Application:
    app = common_web.service_app(settings)

    async def wire(app: web.Application):
        app[CATALOGUE] = Catalogue(app[common_web.PG_POOL])
        app[BOOKINGS] = BaselineBooking(app[common_web.PG_POOL], app[CATALOGUE], app[common_web.RELAY].wake)
        yield

    app.cleanup_ctx.extend(
        [
            common_web.pg_pool(settings.database_url),
            common_web.broker(settings.rabbitmq_url, settings.service_name),
            common_web.outbox(settings),
            wire,
        ]
    )
    app.add_routes(api.routes())
    return app


async def prepare(url: str) -> None:
    """The booking service's schema (its own migrations), plus the capacity rows."""
    from common.migrations import migrate

    await migrate(Path(booking.__file__).parent, url)
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()


async def load(url: str, event: dict, shifts: list[dict], people: list[dict]) -> int:
    """The same data the booking service holds: the event, its professionals, and a row per
    (slot, professional) with the shift's capacity. Returns the units in all."""
    data = EventData.model_validate(event)
    schedule = data.schedule()
    days = (date.fromordinal(n) for n in range(data.start_date.toordinal(), data.end_date.toordinal() + 1))
    every_slot = [slot for day in days for slot in schedule.slots_on_local_day(day, schedule.zone)]
    rows = []
    for shift in shifts:
        start, end = datetime.fromisoformat(shift["start"]), datetime.fromisoformat(shift["end"])
        rows += [
            {
                "event_id": data.id,
                "slot_start": s.start,
                "professional_id": UUID(shift["professional_id"]),
                "capacity": shift["capacity"],
            }
            for s in every_slot
            if start <= s.start and s.end <= end
        ]
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(insert(events).values(id=data.id, definition=data.model_dump(mode="json")))
        await conn.execute(insert(professionals).on_conflict_do_nothing(), people)
        await conn.execute(insert(capacity).on_conflict_do_nothing(), rows)
    await engine.dispose()
    return sum(r["capacity"] for r in rows)


if __name__ == "__main__":
    settings = Settings()
    if sys.argv[1:] == ["prepare"]:
        asyncio.run(prepare(settings.database_url))
    else:
        common_web.serve(create_app(settings), settings)
