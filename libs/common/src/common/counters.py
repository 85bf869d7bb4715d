"""The capacity counters in Redis, as a contract: the booking service (the owner of capacity) is
their only writer; availability reads them. Both sides name keys and parse the event definition
from here, and nothing else about the counters is shared.

Every key of one event shares the hash tag ``{evt:<id>}``, so each script's keys live in one
Redis Cluster slot; slots are hash fields (the slot's start as a Unix time), so no script builds a
key name.
"""

from dataclasses import dataclass, fields
from importlib.resources import files
from uuid import UUID

from redis.asyncio import Redis

from common.contracts import EventData
from common.schedule import Schedule

LIVE_KEYS = ("event", "shifts", "alloc", "capacity", "remaining", "load", "professionals", "holds", "hold_expiry", "waiting")


def lua_source(package: str, *names: str) -> str:
    """The Lua files ``names`` of ``package``'s ``lua`` folder as one script: shared rules (e.g.
    ``sliding_log.lua``) before the script that calls them (a script loaded by EVALSHA cannot call
    another)."""
    lua = files(package).joinpath("lua")
    return "".join(lua.joinpath(name).read_text() for name in names)


@dataclass(frozen=True)
class EventKeys:
    event: str  # hash: sequence, doc (the event with its blackouts, JSON)
    shifts: str  # hash: shift id -> the applied shift state and its sequence
    alloc: str  # hash: slot -> {"c": {professional: capacity}, "u": {professional: {unit: booking}}}
    capacity: str  # hash: slot -> total capacity
    remaining: str  # hash: slot -> capacity - used
    load: str  # hash: "<event day>|<professional>" -> bookings that day (for fair assignment)
    professionals: str  # hash: professional -> name, email, timezone
    holds: str  # hash: booking (or waitlist entry offered a unit) -> the unit it holds until confirmed
    hold_expiry: str  # sorted set: booking -> when its hold expires (ms)
    waiting: str  # hash: slot -> its waitlist, a JSON list of entry ids, first first

    @classmethod
    def of(cls, prefix: str, event_id: UUID, stage: str = "") -> "EventKeys":
        """``stage``: a set of keys beside the live ones in the same hash slot (a rebuild's)."""
        base = f"{prefix}:{{evt:{event_id}}}:{stage}"
        return cls(*(f"{base}{name}" for name in LIVE_KEYS))

    def live(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def changes_channel(prefix: str) -> str:
    """Where every script that changes what availability shows announces it: ``"<event> <slot>"``,
    or ``"<event>"`` for anything of the event."""
    return f"{prefix}:changes"


def built_marker(prefix: str) -> str:
    """Set once every event's counters were built; gone when Redis lost its data."""
    return f"{prefix}:counters-built"


@dataclass(frozen=True)
class KnownEvent:
    sequence: int
    data: EventData
    schedule: Schedule


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
    """The event changed between reading its definition and using it."""


class EventDefinitions:
    """Events' definitions as the counters hold them, parsed once and kept: every script that uses
    one checks its sequence, and whoever finds it changed ``forget``s it here."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._known: dict[UUID, KnownEvent] = {}

    def keys(self, event_id: UUID) -> EventKeys:
        return EventKeys.of(self._prefix, event_id)

    async def read(self, event_id: UUID) -> KnownEvent | None:
        """The event as the counters hold it now (one round trip)."""
        raw = await self._redis.hgetall(self.keys(event_id).event)
        if not raw:
            self._known.pop(event_id, None)
            return None
        data = EventData.model_validate_json(raw["doc"])
        known = self._known[event_id] = KnownEvent(int(raw["sequence"]), data, data.schedule())
        return known

    async def current(self, event_id: UUID) -> KnownEvent | None:
        """The event as this process last read it, without a round trip."""
        return self._known.get(event_id) or await self.read(event_id)

    def forget(self, event_id: UUID) -> None:
        self._known.pop(event_id, None)

    async def is_built(self) -> bool:
        return bool(await self._redis.exists(built_marker(self._prefix)))
