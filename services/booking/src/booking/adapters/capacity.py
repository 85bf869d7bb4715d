"""The capacity counters in Redis, as their one writer keeps them: the booking service takes,
confirms, releases and moves units, applies shift and event changes, rebuilds and repairs events
and expires holds, each through a script of ``lua/`` (one atomic step, every key through KEYS).
The key layout is the contract with availability, which only reads (``common.counters``)."""

import json
import math
import time
from dataclasses import dataclass
from datetime import date
from uuid import UUID

from redis.asyncio import Redis

from booking.adapters.counters import Hold, holds_in, shift_state
from common.contracts import EventData, Person, ShiftData
from common.counters import LIVE_KEYS, EventDefinitions, EventKeys, KnownEvent, StaleEvent, built_marker, changes_channel
from common.counters import lua_source as _lua
from common.schedule import Slot


def lua_source(*names: str) -> str:
    """This service's scripts, ``slots.lua`` (the rules they share) first where named."""
    return _lua("booking.adapters", *names)


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


class CountersLost(Exception):
    """The event has no counters in Redis (it lost its data): a step that needs them cannot be
    taken now; the owner builds the event from its record and takes it then."""


class CapacityStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._definitions = EventDefinitions(redis, prefix)
        self._apply_event = redis.register_script(lua_source("apply_event.lua"))
        self._apply_shift = redis.register_script(lua_source("slots.lua", "apply_shift.lua"))
        self._take = redis.register_script(_lua("common", "sliding_log.lua") + lua_source("slots.lua", "take.lua"))
        self._relocate = redis.register_script(lua_source("slots.lua", "relocate.lua"))
        self._move = redis.register_script(lua_source("slots.lua", "move.lua"))
        self._join = redis.register_script(lua_source("slots.lua", "join.lua"))
        self._leave = redis.register_script(lua_source("leave.lua"))
        self._offer = redis.register_script(lua_source("slots.lua", "offer.lua"))
        self._release = redis.register_script(lua_source("slots.lua", "release.lua"))
        self._rebuild = redis.register_script(lua_source("slots.lua", "rebuild.lua"))
        self._confirm = redis.register_script(lua_source("confirm.lua"))
        self._changes_channel = changes_channel(prefix)
        self._days: dict[tuple[UUID, int, date], tuple[tuple[Slot, ...], str]] = {}  # an event day's slots

    def keys(self, event_id: UUID) -> EventKeys:
        return EventKeys.of(self._prefix, event_id)

    def _announce(self, event_id: UUID) -> list[str]:
        """The last two arguments of every script that changes what availability shows."""
        return [self._changes_channel, str(event_id)]

    # -- shift and event changes -------------------------------------------------------------

    async def apply_event(self, sequence: int, data: EventData) -> bool:
        """True when applied, False when older than (or the same as) what is there;
        ``CountersLost`` when the event has no counters here (new, or lost)."""
        keys = self.keys(data.id)
        applied = await self._apply_event(keys=[keys.event], args=[sequence, data.model_dump_json(), *self._announce(data.id)])
        self._definitions.forget(data.id)
        return _applied(applied, data.id)

    async def apply_shift(self, sequence: int, shift: ShiftData) -> bool:
        """As ``apply_event``, for one shift's contribution to its event's slots."""
        keys = self.keys(shift.event_id)
        applied = await self._apply_shift(
            keys=[keys.shifts, keys.alloc, keys.capacity, keys.remaining, keys.professionals, keys.event],
            args=[
                str(shift.id),
                sequence,
                json.dumps(shift_state(shift)),
                shift.professional.model_dump_json(),
                *self._announce(shift.event_id),
            ],
        )
        return _applied(applied, shift.event_id)

    # -- reads -------------------------------------------------------------------------------

    async def event(self, event_id: UUID) -> KnownEvent | None:
        return await self._definitions.read(event_id)

    async def current_event(self, event_id: UUID) -> KnownEvent | None:
        """The event as this process last read it, without a round trip. Every script that uses it
        checks its sequence; one that finds the event changed raises StaleEvent and forgets it here."""
        return await self._definitions.current(event_id)

    async def is_built(self) -> bool:
        return await self._definitions.is_built()

    async def mark_built(self) -> None:
        await self._redis.set(built_marker(self._prefix), "1")

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
        ``fingerprint`` given); ``Limited`` when ``limit``'s client has used its attempts. Unless
        ``confirm``ed after the booking's commit, the owner gives the unit back once the hold expires."""
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
                keys.holds,
                keys.hold_expiry,
                idempotency_key or _no_record(keys),
                f"{keys.event}:attempts:{limit.client_id}" if limit else f"{keys.event}:attempts:none",
                keys.waiting,
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
                known.data.max_per_professional_per_day or 0,
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
            keys=[keys.alloc, keys.remaining, keys.load, keys.professionals, keys.event, keys.capacity],
            args=[
                slot.key,
                known.schedule.event_day_of(slot.start).isoformat(),
                str(booking_id),
                repr(random),
                str(professional_id),
                "blocked" if blocked else "",
                known.data.max_per_professional_per_day or 0,
                *self._announce(known.data.id),
            ],
        )
        return self._placed(known, result)

    async def move(
        self, known: KnownEvent, held: Slot | None, to: Slot, booking_id: UUID, professional_id: UUID, random: float
    ) -> Taken | Full:
        """Give back the unit ``booking_id`` holds in ``held`` (None: it holds none) and take one in
        ``to``, in one step: its professional's when they have room, else by fair assignment;
        ``Full`` (nothing changed) when nobody has room in ``to``."""
        keys = self.keys(known.data.id)
        new_day = known.schedule.event_day_of(to.start)
        day_slots, day_keys = self._event_day(known, new_day)
        result = await self._move(
            keys=[keys.event, keys.alloc, keys.remaining, keys.load, keys.professionals, keys.capacity, keys.waiting],
            args=[
                known.sequence,
                held.key if held else "",
                known.schedule.event_day_of(held.start).isoformat() if held else "",
                to.key,
                new_day.isoformat(),
                str(booking_id),
                str(professional_id),
                repr(random),
                known.data.max_per_professional_per_day or 0,
                day_keys,
                *self._announce(known.data.id),
            ],
        )
        if result[0] == 0:
            return Full(day_slots, tuple(int(n) for n in result[1].split(",")) if result[1] else ())
        return self._placed(known, result)

    # -- the waitlist ------------------------------------------------------------------------

    async def join(self, known: KnownEvent, slot: Slot, entry_id: UUID) -> int | None:
        """Put the entry at the end of the slot's waitlist; its position (1: first), or None when
        the slot has a unit nobody waits for (book it instead)."""
        keys = self.keys(known.data.id)
        result = await self._join(
            keys=[keys.event, keys.alloc, keys.load, keys.waiting],
            args=[
                known.sequence,
                slot.key,
                known.schedule.event_day_of(slot.start).isoformat(),
                str(entry_id),
                known.data.max_per_professional_per_day or 0,
            ],
        )
        if result[0] == -1:
            self._definitions.forget(known.data.id)
            raise StaleEvent(str(known.data.id))
        return int(result[1]) if result[0] == 1 else None

    async def leave(self, event_id: UUID, slot: Slot, entry_id: UUID) -> bool:
        """Take the entry out of the slot's waitlist (an offer it holds is given back by ``release``)."""
        return bool(await self._leave(keys=[self.keys(event_id).waiting], args=[slot.key, str(entry_id)]))

    async def professional(self, event_id: UUID, professional_id: UUID) -> Person:
        raw = await self._redis.hget(self.keys(event_id).professionals, str(professional_id))
        return Person.model_validate_json(raw) if raw else Person(id=professional_id, name="")

    async def waitlist(self, event_id: UUID, slot: Slot) -> list[UUID]:
        raw = await self._redis.hget(self.keys(event_id).waiting, slot.key)
        return [UUID(e) for e in json.loads(raw)] if raw else []

    async def offer(self, known: KnownEvent, slot: Slot, offer_seconds: float, random: float) -> list[UUID]:
        """Offer the slot's free units to its waitlist, first first; the entries offered one now."""
        keys = self.keys(known.data.id)
        offered = await self._offer(
            keys=[keys.event, keys.alloc, keys.remaining, keys.load, keys.capacity, keys.holds, keys.hold_expiry, keys.waiting],
            args=[
                slot.key,
                known.schedule.event_day_of(slot.start).isoformat(),
                repr(random),
                known.data.max_per_professional_per_day or 0,
                int((time.time() + offer_seconds) * 1000),
                *self._announce(known.data.id),
            ],
        )
        return [UUID(e) for e in offered]

    async def waited_for(self, event_ids: list[UUID]) -> dict[UUID, list[str]]:
        """Per event (of ``event_ids``) that has a waitlist, the slots waited for (one round trip)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for event_id in event_ids:
                pipe.hkeys(self.keys(event_id).waiting)
            found = await pipe.execute()
        return {event_id: slots for event_id, slots in zip(event_ids, found, strict=True) if slots}

    def _placed(self, known: KnownEvent, result: list) -> Taken | None:
        if result[0] == -2:
            raise CountersLost(str(known.data.id))
        if result[0] == -1:
            self._definitions.forget(known.data.id)
            raise StaleEvent(str(known.data.id))
        if result[0] == 0:
            return None
        return Taken(Person.model_validate_json(result[3]), int(result[2]), json.loads(result[4]))

    async def holds(self, event_id: UUID) -> list[Hold]:
        keys = self.keys(event_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.holds)
            pipe.zrange(keys.hold_expiry, 0, -1, withscores=True)
            held, expiry = await pipe.execute()
        return holds_in({"holds": held, "hold_expiry": {member: str(int(score)) for member, score in expiry}})

    async def hold(self, event_id: UUID, booking_id: UUID) -> Hold | None:
        """The one hold of ``booking_id`` (a booking's, or a waitlist place's offer), if any."""
        keys = self.keys(event_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(keys.holds, str(booking_id))
            pipe.zscore(keys.hold_expiry, str(booking_id))
            held, expires = await pipe.execute()
        if held is None:
            return None
        return holds_in({"holds": {str(booking_id): held}, "hold_expiry": {str(booking_id): str(int(expires or 0))}})[0]

    async def professional_usage(self, event_id: UUID, slot: Slot) -> dict[str, int]:
        """Units in use per professional in the slot (confirmed and held)."""
        raw = await self._redis.hget(self.keys(event_id).alloc, slot.key)
        return {pro: len(units) for pro, units in json.loads(raw)["u"].items()} if raw else {}

    async def missing(self, event_ids: list[UUID]) -> list[UUID]:
        """The events, of ``event_ids``, that have no counters (one round trip; on a cluster, one
        per node: what a lost master held)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for event_id in event_ids:
                pipe.exists(self.keys(event_id).event)
            found = await pipe.execute()
        return [event_id for event_id, exists in zip(event_ids, found, strict=True) if not exists]

    async def expired_holds(self, event_ids: list[UUID], now_ms: int) -> list[UUID]:
        """The events, of ``event_ids``, that hold a unit whose hold has expired (one round trip)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for event_id in event_ids:
                pipe.zrangebyscore(self.keys(event_id).hold_expiry, "-inf", now_ms, start=0, num=1)
            found = await pipe.execute()
        return [event_id for event_id, expired in zip(event_ids, found, strict=True) if expired]

    # -- rebuilding from the record ----------------------------------------------------------

    async def replace_event(self, event_id: UUID, counters: dict[str, dict[str, str]]) -> tuple[int, int]:
        """Swap in the event's ``counters`` (built from the record, without holds) in one step that
        keeps the holds in flight; returns (holds kept, holds dropped). The caller holds the
        event's exclusive lock: nothing else rebuilds or changes the event meanwhile."""
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
        kept, dropped = await self._rebuild(keys=[*staged.live().values(), *live.live().values()], args=self._announce(event_id))
        self._definitions.forget(event_id)
        return max(0, int(kept)), int(dropped)  # -1: sent again after it had swapped, nothing more to count

    async def raw(self, event_id: UUID) -> dict[str, dict[str, str]]:
        """Every hash of the event (and the hold expiry set) as stored, read in one step (MULTI:
        the keys share a hash slot), for checks and reconciling."""
        keys = self.keys(event_id)
        async with self._redis.pipeline(transaction=True) as pipe:
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


def _applied(result: int, event_id: UUID) -> bool:
    if result == -1:
        raise CountersLost(str(event_id))
    return bool(result)
