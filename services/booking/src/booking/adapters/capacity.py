import json
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, fields
from datetime import date
from importlib.resources import files
from uuid import UUID
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from common.announcements import announcements
from common.capacity.counters import Hold, UnitInUse, shift_state
from common.contracts import EventData, Person, ShiftData
from common.schedule import Schedule, Slot

LIVE_KEYS = ("event", "shifts", "alloc", "capacity", "remaining", "load", "professionals", "holds", "hold_expiry")


def lua_source(*names: str) -> str:
    """The Lua files of ``common/capacity/lua`` as one script: the shared rules a script calls
    (``slots.lua``, ``sliding_log.lua``) before it."""
    lua = files("common.capacity").joinpath("lua")
    return "".join(lua.joinpath(name).read_text() for name in names)


@dataclass(frozen=True)
class EventKeys:
    event: str
    shifts: str
    alloc: str
    capacity: str
    remaining: str
    load: str
    professionals: str
    holds: str  # booking -> the unit it holds until its commit is confirmed
    hold_expiry: str  # sorted set: booking -> when its hold expires (ms)
    rebuilding: str  # a flag: set while the event's counters are rebuilt

    @classmethod
    def of(cls, prefix: str, event_id: UUID, stage: str = "") -> "EventKeys":
        base = f"{prefix}:{{evt:{event_id}}}:{stage}"
        return cls(*(f"{base}{name}" for name in (*LIVE_KEYS, "rebuilding")))

    def live(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in LIVE_KEYS}


@dataclass(frozen=True)
class KnownEvent:
    sequence: int
    data: EventData
    schedule: Schedule


@dataclass(frozen=True)
class DayCounts:
    event: KnownEvent
    slots: tuple[Slot, ...]
    capacity: list[int]
    remaining: list[int]


@dataclass(frozen=True)
class Taken:
    professional: Person
    unit: int
    eligible: dict[str, int]  # the professionals who had room, with their bookings that day: the audit trail


@dataclass(frozen=True)
class Earlier:
    """What a client's Idempotency-Key already stands for: an attempt in flight (``held``) or a
    committed booking (``done``, with the booking as JSON)."""

    state: str
    booking_id: UUID
    fingerprint: str
    data: str | None = None  # the booking (BookingData) as JSON, once done

    @classmethod
    def parse(cls, raw: str) -> "Earlier":
        record = json.loads(raw)
        return cls(record["state"], UUID(record["booking"]), record["fingerprint"], record.get("data"))

    def dump(self) -> str:
        return json.dumps(
            {"state": self.state, "booking": str(self.booking_id), "fingerprint": self.fingerprint, "data": self.data}
        )


@dataclass(frozen=True)
class Full:
    """Nobody has room in the slot; with the day's slots and their remaining units, read in the
    same step, so a refusal can offer the nearest open slots without another round trip."""

    slots: tuple[Slot, ...]
    remaining: tuple[int, ...]


@dataclass(frozen=True)
class AttemptLimit:
    """How many booking attempts one client may make on one event in any window (a sliding one);
    counted by the take script itself, so a limited attempt costs no round trip of its own."""

    client_id: UUID
    per_window: int  # 0: no limit
    window_seconds: int = 60


@dataclass(frozen=True)
class Limited:
    """The client has made its attempts in the last window; ``retry_after`` s until one more is let through."""

    retry_after: int


@dataclass(frozen=True)
class CounterChange:
    """What a script changed: one slot of an event, or (``slot`` None) anything of it."""

    event_id: UUID
    slot: str | None

    @classmethod
    def parse(cls, message: str) -> "CounterChange":
        event_id, _, slot = message.partition(" ")
        return cls(UUID(event_id), slot or None)


class StaleEvent(Exception):
    """The event changed between reading it and taking capacity."""


class Rebuilding(Exception):
    """The event's counters are being rebuilt; try again in a moment."""


class CapacityStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._apply_event = redis.register_script(lua_source("apply_event.lua"))
        self._apply_shift = redis.register_script(lua_source("slots.lua", "apply_shift.lua"))
        self._take = redis.register_script(lua_source("slots.lua", "sliding_log.lua", "take.lua"))
        self._relocate = redis.register_script(lua_source("slots.lua", "relocate.lua"))
        self._release = redis.register_script(lua_source("slots.lua", "release.lua"))
        self._commit_rebuild = redis.register_script(lua_source("commit_rebuild.lua"))
        self._read_day = redis.register_script(lua_source("read_day.lua"))
        self._confirm = redis.register_script(lua_source("confirm.lua"))
        self.changes_channel = f"{prefix}:changes"  # where the scripts announce what they changed
        self._events: dict[UUID, KnownEvent] = {}  # parsed definitions, revalidated on every read
        self._days: dict[tuple[UUID, int, date], tuple[tuple[Slot, ...], str]] = {}  # an event day's slots

    def keys(self, event_id: UUID) -> EventKeys:
        return EventKeys.of(self._prefix, event_id)

    def _announce(self, event_id: UUID) -> list[str]:
        """The last two arguments of every script that changes what availability shows."""
        return [self.changes_channel, str(event_id)]

    # -- writes from the shift-change consumer -------------------------------------------------

    async def apply_event(self, sequence: int, data: EventData) -> bool:
        """True when applied, False when older than (or the same as) what is there."""
        keys = self.keys(data.id)
        return _applied(
            await self._apply_event(
                keys=[keys.event, keys.rebuilding], args=[sequence, data.model_dump_json(), *self._announce(data.id)]
            )
        )

    async def apply_shift(self, sequence: int, shift: ShiftData) -> bool:
        keys = self.keys(shift.event_id)
        applied = await self._apply_shift(
            keys=[keys.shifts, keys.alloc, keys.capacity, keys.remaining, keys.professionals, keys.rebuilding],
            args=[
                str(shift.id),
                sequence,
                json.dumps(shift_state(shift)),
                shift.professional.model_dump_json(),
                *self._announce(shift.event_id),
            ],
        )
        return _applied(applied)

    # -- reads -------------------------------------------------------------------------------

    async def event(self, event_id: UUID) -> KnownEvent | None:
        raw = await self._redis.hgetall(self.keys(event_id).event)
        return self._remember(event_id, raw)

    def _remember(self, event_id: UUID, raw: dict) -> KnownEvent | None:
        if not raw:
            self._events.pop(event_id, None)
            return None
        data = EventData.model_validate_json(raw["doc"])
        known = KnownEvent(int(raw["sequence"]), data, data.schedule())
        self._events[event_id] = known
        return known

    async def current_event(self, event_id: UUID) -> KnownEvent | None:
        """The event as this process last read it, without a round trip. Every script that uses it
        checks its sequence; one that finds the event changed raises StaleEvent and forgets it here."""
        return self._events.get(event_id) or await self.event(event_id)

    async def day_counts(self, event_id: UUID, day: date, zone: ZoneInfo | None = None) -> DayCounts | None:
        """The slots of the calendar day ``day`` in ``zone`` (default: the event's) with their
        capacity and remaining units: one round trip when the event definition we hold is still
        current, which the same script checks."""
        keys = self.keys(event_id)
        for _ in range(3):
            known = await self.current_event(event_id)
            if known is None:
                return None
            slots = known.schedule.slots_on_local_day(day, zone or known.schedule.zone)
            if not slots:
                return DayCounts(known, (), [], [])
            sequence, packed = await self._read_day(
                keys=[keys.event, keys.capacity, keys.remaining], args=[",".join(s.key for s in slots)]
            )
            if sequence is not None and int(sequence) == known.sequence:
                pairs = [pair.split(":") for pair in packed.split(",")]
                return DayCounts(known, slots, [int(c) for c, _ in pairs], [int(r) for _, r in pairs])
            self._events.pop(event_id, None)
        raise StaleEvent(str(event_id))

    async def changes(self) -> AsyncIterator[CounterChange | None]:
        """Every change the scripts announce, as they announce it; None first, once subscribed
        (``common.announcements``: whoever follows must forget what it kept when this raises)."""
        async for message in announcements(self._redis, self.changes_channel):
            yield None if message is None else CounterChange.parse(message)

    # -- booking -----------------------------------------------------------------------------

    def idempotency_key(self, event_id: UUID, client_id: UUID, key: str | None) -> str:
        """The record of a client's attempts with one Idempotency-Key (beside the event's counters,
        so the take script can check and set it in the same step)."""
        return f"{self.keys(event_id).event}:idem:{client_id}:{key or ''}"

    async def take(
        self,
        known: KnownEvent,
        slot: Slot,
        random: float,
        booking_id: UUID,
        hold_seconds: float,
        idempotency_key: str | None = None,
        fingerprint: str = "",
        limit: AttemptLimit | None = None,
    ) -> Taken | Earlier | Full | Limited:
        """Hold a unit in ``slot`` for ``booking_id`` from the professional the script picks; ``Full``
        when nobody has room; ``Earlier`` when ``idempotency_key`` was used before (with
        ``fingerprint`` given); ``Limited`` when ``limit``'s client has used its attempts. The hold
        expires by itself unless ``confirm`` is called after the booking's commit."""
        keys = self.keys(known.data.id)
        now = time.time()
        expires_ms = int((now + hold_seconds) * 1000)
        day = known.schedule.event_day_of(slot.start)
        day_slots, day_keys = self._event_day(known, day)
        result = await self._take(
            keys=[
                keys.event,
                keys.alloc,
                keys.remaining,
                keys.load,
                keys.professionals,
                keys.rebuilding,
                keys.holds,
                keys.hold_expiry,
                idempotency_key or _no_record(keys),
                f"{keys.event}:attempts:{limit.client_id}" if limit else f"{keys.event}:attempts:none",
            ],
            args=[
                known.sequence,
                slot.key,
                day.isoformat(),
                repr(random),
                str(booking_id),
                expires_ms,
                max(1, int(hold_seconds * 1000)),
                fingerprint if idempotency_key else "",
                day_keys,
                limit.per_window if limit else 0,
                limit.window_seconds * 1000 if limit else 0,
                *self._announce(known.data.id),
            ],
        )
        if result[0] == -4:
            return Limited(max(1, math.ceil(int(result[1]) / 1000)))
        if result[0] == -3:
            return Earlier.parse(result[1])
        if result[0] == 0:
            return Full(day_slots, tuple(int(n) for n in result[1].split(",")) if result[1] else ())
        return self._placed(known, result)

    def _event_day(self, known: KnownEvent, day: date) -> tuple[tuple[Slot, ...], str]:
        """The event day's slots, and their keys as the take script wants them (kept per definition)."""
        index = (known.data.id, known.sequence, day)
        if index not in self._days:
            if len(self._days) > 10_000:
                self._days.clear()
            slots = tuple(known.schedule.slots_on_local_day(day, known.schedule.zone))
            self._days[index] = (slots, ",".join(s.key for s in slots))
        return self._days[index]

    async def earlier(self, idempotency_key: str) -> "Earlier | None":
        raw = await self._redis.get(idempotency_key)
        return Earlier.parse(raw) if raw else None

    async def confirm(
        self,
        event_id: UUID,
        booking_id: UUID,
        idempotency_key: str | None = None,
        answer: Earlier | None = None,
        keep_seconds: int = 0,
    ) -> bool:
        """The booking is committed: drop its hold; with ``answer``, retries with its key get it."""
        keys = self.keys(event_id)
        record = answer.dump() if answer and idempotency_key else ""
        return bool(
            await self._confirm(
                keys=[keys.holds, keys.hold_expiry, idempotency_key or _no_record(keys)],
                args=[str(booking_id), record, keep_seconds],
            )
        )

    async def release(
        self, known: KnownEvent, slot: Slot, booking_id: UUID, held_only: bool = False, idempotency_key: str | None = None
    ) -> bool:
        """Give back the unit ``booking_id`` holds in ``slot``, wherever it is (``held_only``: only
        while it is still an unconfirmed hold)."""
        keys = self.keys(known.data.id)
        released = await self._release(
            keys=[
                keys.alloc, keys.remaining, keys.load, keys.capacity, keys.holds, keys.hold_expiry,
                idempotency_key or _no_record(keys),
            ],
            args=[
                slot.key, known.schedule.event_day_of(slot.start).isoformat(), str(booking_id), "held" if held_only else "",
                *self._announce(known.data.id),
            ],
        )  # fmt: skip
        return bool(released)

    async def relocate(
        self, known: KnownEvent, slot: Slot, booking_id: UUID, professional_id: UUID, random: float, blocked: bool = False
    ) -> Taken | None:
        """Put a confirmed booking on a unit within someone's capacity in its slot (its own
        professional first); None when nobody has room (it then holds no unit)."""
        keys = self.keys(known.data.id)
        result = await self._relocate(
            keys=[keys.alloc, keys.remaining, keys.load, keys.professionals, keys.rebuilding, keys.capacity],
            args=[
                slot.key,
                known.schedule.event_day_of(slot.start).isoformat(),
                str(booking_id),
                repr(random),
                str(professional_id),
                "blocked" if blocked else "",
                *self._announce(known.data.id),
            ],
        )
        return self._placed(known, result)

    def _placed(self, known: KnownEvent, result: list) -> Taken | None:
        if result[0] == -2:
            raise Rebuilding(str(known.data.id))
        if result[0] == -1:
            self._events.pop(known.data.id, None)
            raise StaleEvent(str(known.data.id))
        if result[0] == 0:
            return None
        return Taken(Person.model_validate_json(result[3]), int(result[2]), json.loads(result[4]))

    async def holds(self, event_id: UUID) -> list[Hold]:
        keys = self.keys(event_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.holds)
            pipe.zrange(keys.hold_expiry, 0, -1, withscores=True)
            raw, expiry = await pipe.execute()
        expires = {member: int(score) for member, score in expiry}
        holds = []
        for booking_id, state in raw.items():
            h = json.loads(state)
            taken = UnitInUse(h["slot"], UUID(h["professional"]), int(h["unit"]), UUID(booking_id))
            holds.append(Hold(taken, h["day"], expires.get(booking_id, 0)))
        return holds

    async def professional_usage(self, event_id: UUID, slot: Slot) -> dict[str, int]:
        """Units in use per professional in the slot (confirmed and held)."""
        raw = await self._redis.hget(self.keys(event_id).alloc, slot.key)
        return {pro: len(units) for pro, units in json.loads(raw)["u"].items()} if raw else {}

    # -- rebuilding from the system of record ------------------------------------------------

    @property
    def built_marker(self) -> str:
        """Set once every event's counters were built; gone when Redis lost its data."""
        return f"{self._prefix}:counters-built"

    async def is_built(self) -> bool:
        return bool(await self._redis.exists(self.built_marker))

    async def mark_built(self) -> None:
        await self._redis.set(self.built_marker, "1")

    async def lock_rebuild(self, token: str, ttl_seconds: float) -> bool:
        """One rebuild of everything at a time, across every availability instance."""
        return bool(await self._redis.set(f"{self._prefix}:rebuild-lock", token, nx=True, px=int(ttl_seconds * 1000)))

    async def unlock_rebuild(self, token: str) -> None:
        lock = f"{self._prefix}:rebuild-lock"
        if await self._redis.get(lock) == token:
            await self._redis.delete(lock)

    async def begin_rebuild(self, event_id: UUID, token: str, ttl_seconds: float) -> bool:
        """Flag the event: until the swap, takes are refused and shift changes wait."""
        flag = self.keys(event_id).rebuilding
        return bool(await self._redis.set(flag, token, nx=True, px=int(ttl_seconds * 1000)))

    async def replace_event(self, event_id: UUID, counters: dict[str, dict[str, str]], token: str) -> bool:
        """Write the built counters beside the live ones, then swap them in atomically.
        False (and nothing changed) when the rebuild flag is no longer ours."""
        live, staged = self.keys(event_id), EventKeys.of(self._prefix, event_id, stage="next:")
        async with self._redis.pipeline(transaction=False) as pipe:
            for name, key in staged.live().items():
                pipe.delete(key)
                if not counters.get(name):
                    continue
                if name == "hold_expiry":
                    pipe.zadd(key, {member: int(score) for member, score in counters[name].items()})
                else:
                    pipe.hset(key, mapping=counters[name])
            await pipe.execute()
        pairs = [key for name in LIVE_KEYS for key in (staged.live()[name], live.live()[name])]
        swapped = bool(await self._commit_rebuild(keys=[live.rebuilding, *pairs], args=[token, *self._announce(event_id)]))
        if not swapped:
            await self._redis.delete(*staged.live().values())
        self._events.pop(event_id, None)
        return swapped

    async def abandon_rebuild(self, event_id: UUID, token: str) -> None:
        await self._commit_rebuild(keys=[self.keys(event_id).rebuilding], args=[token, *self._announce(event_id)])

    async def raw(self, event_id: UUID) -> dict[str, dict[str, str]]:
        """Every hash of the event (and the hold expiry set) as stored, for checks and reconciling."""
        keys = self.keys(event_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            for name, key in keys.live().items():
                if name == "hold_expiry":
                    pipe.zrange(key, 0, -1, withscores=True)
                else:
                    pipe.hgetall(key)
            values = await pipe.execute()
        state = dict(zip(LIVE_KEYS, values, strict=True))
        state["hold_expiry"] = {member: str(int(score)) for member, score in state["hold_expiry"]}
        return state


def _no_record(keys: EventKeys) -> str:
    """The idempotency-record key scripts get when the client sent no Idempotency-Key (never set)."""
    return f"{keys.event}:idem:none"


def _applied(result: int) -> bool:
    if result == -1:
        raise Rebuilding("counters are being rebuilt")
    return bool(result)
