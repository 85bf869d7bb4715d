import json
from dataclasses import dataclass, fields
from datetime import date
from importlib.resources import files
from uuid import UUID
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from common.capacity.counters import shift_state
from common.contracts import EventData, Person, ShiftData
from common.schedule import Schedule, Slot

LIVE_KEYS = ("event", "shifts", "alloc", "capacity", "remaining", "load", "professionals")


def _script(name: str) -> str:
    return files("common.capacity").joinpath("lua", name).read_text()


@dataclass(frozen=True)
class EventKeys:
    event: str
    shifts: str
    alloc: str
    capacity: str
    remaining: str
    load: str
    professionals: str
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


class StaleEvent(Exception):
    """The event changed between reading it and taking capacity."""


class Rebuilding(Exception):
    """The event's counters are being rebuilt; try again in a moment."""


class CapacityStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._apply_event = redis.register_script(_script("apply_event.lua"))
        self._apply_shift = redis.register_script(_script("apply_shift.lua"))
        self._take = redis.register_script(_script("take.lua"))
        self._release = redis.register_script(_script("release.lua"))
        self._commit_rebuild = redis.register_script(_script("commit_rebuild.lua"))
        self._read_day = redis.register_script(_script("read_day.lua"))
        self._events: dict[UUID, KnownEvent] = {}  # parsed definitions, revalidated on every read

    def keys(self, event_id: UUID) -> EventKeys:
        return EventKeys.of(self._prefix, event_id)

    # -- writes from the shift-change consumer -------------------------------------------------

    async def apply_event(self, sequence: int, data: EventData) -> bool:
        """True when applied, False when older than (or the same as) what is there."""
        keys = self.keys(data.id)
        return _applied(await self._apply_event(keys=[keys.event, keys.rebuilding], args=[sequence, data.model_dump_json()]))

    async def apply_shift(self, sequence: int, shift: ShiftData) -> bool:
        keys = self.keys(shift.event_id)
        applied = await self._apply_shift(
            keys=[keys.shifts, keys.alloc, keys.capacity, keys.remaining, keys.professionals, keys.rebuilding],
            args=[str(shift.id), sequence, json.dumps(shift_state(shift)), shift.professional.model_dump_json()],
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

    async def _current_event(self, event_id: UUID) -> KnownEvent | None:
        return self._events.get(event_id) or await self.event(event_id)

    async def day_counts(self, event_id: UUID, day: date, zone: ZoneInfo | None = None) -> DayCounts | None:
        """The slots of the calendar day ``day`` in ``zone`` (default: the event's) with their
        capacity and remaining units: one round trip when the event definition we hold is still
        current, which the same script checks."""
        keys = self.keys(event_id)
        for _ in range(3):
            known = await self._current_event(event_id)
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

    # -- booking -----------------------------------------------------------------------------

    async def take(self, known: KnownEvent, slot: Slot, random: float) -> Taken | None:
        """Take a unit in ``slot`` from the professional the script picks; None when full."""
        keys = self.keys(known.data.id)
        result = await self._take(
            keys=[keys.event, keys.alloc, keys.remaining, keys.load, keys.professionals, keys.rebuilding],
            args=[known.sequence, slot.key, known.schedule.event_day_of(slot.start).isoformat(), repr(random)],
        )
        if result[0] == -2:
            raise Rebuilding(str(known.data.id))
        if result[0] == -1:
            self._events.pop(known.data.id, None)
            raise StaleEvent(str(known.data.id))
        if result[0] == 0:
            return None
        return Taken(Person.model_validate_json(result[2]))

    async def release(self, known: KnownEvent, slot: Slot, professional_id: UUID) -> bool:
        keys = self.keys(known.data.id)
        released = await self._release(
            keys=[keys.alloc, keys.remaining, keys.load, keys.capacity],
            args=[slot.key, known.schedule.event_day_of(slot.start).isoformat(), str(professional_id)],
        )
        return bool(released)

    async def professional_usage(self, event_id: UUID, slot: Slot) -> dict[str, dict[str, int]]:
        raw = await self._redis.hget(self.keys(event_id).alloc, slot.key)
        return json.loads(raw) if raw else {"c": {}, "u": {}}

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
                if counters.get(name):
                    pipe.hset(key, mapping=counters[name])
            await pipe.execute()
        pairs = [key for name in LIVE_KEYS for key in (staged.live()[name], live.live()[name])]
        swapped = bool(await self._commit_rebuild(keys=[live.rebuilding, *pairs], args=[token]))
        if not swapped:
            await self._redis.delete(*staged.live().values())
        self._events.pop(event_id, None)
        return swapped

    async def abandon_rebuild(self, event_id: UUID, token: str) -> None:
        await self._commit_rebuild(keys=[self.keys(event_id).rebuilding], args=[token])

    async def raw(self, event_id: UUID) -> dict[str, dict[str, str]]:
        """Every hash of the event as stored (for rebuild checks and reconciling)."""
        keys = self.keys(event_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys.live().values():
                pipe.hgetall(key)
            values = await pipe.execute()
        return dict(zip(LIVE_KEYS, values, strict=True))


def _applied(result: int) -> bool:
    if result == -1:
        raise Rebuilding("counters are being rebuilt")
    return bool(result)
