"""The capacity counters, read only: availability never writes them (the booking service, the owner
of capacity, is their only writer; ``common.counters`` is the contract between the two)."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from uuid import UUID
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from common.announcements import announcements
from common.counters import CounterChange, EventDefinitions, KnownEvent, StaleEvent, changes_channel, lua_source
from common.schedule import Slot


@dataclass(frozen=True)
class DayCounts:
    event: KnownEvent
    slots: tuple[Slot, ...]
    capacity: list[int]
    remaining: list[int]


class Counters:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._definitions = EventDefinitions(redis, prefix)
        self._read_day = redis.register_script(lua_source("availability.adapters", "read_day.lua"))
        self._channel = changes_channel(prefix)

    async def day_counts(self, event_id: UUID, day: date, zone: ZoneInfo | None = None) -> DayCounts | None:
        """The slots of the calendar day ``day`` in ``zone`` (default: the event's) with their
        capacity and remaining units."""
        counted = await self.days_counts(event_id, [day], zone)
        return None if counted is None else counted[0]

    async def days_counts(self, event_id: UUID, days: list[date], zone: ZoneInfo | None = None) -> list[DayCounts] | None:
        """``day_counts`` of each of ``days``, all read in one round trip when the event definition
        we hold is still current, which the same script checks."""
        keys = self._definitions.keys(event_id)
        for _ in range(3):
            known = await self._definitions.current(event_id)
            if known is None:
                return None
            schedule = known.schedule
            slots_per_day = [schedule.slots_on_local_day(day, zone or schedule.zone) for day in days]
            slots = [slot for day_slots in slots_per_day for slot in day_slots]
            if not slots:
                return [DayCounts(known, (), [], []) for _ in days]
            daily_max = known.data.max_per_professional_per_day or 0
            event_days = ",".join(schedule.event_day_of(s.start).isoformat() for s in slots) if daily_max else ""
            sequence, packed = await self._read_day(
                keys=[keys.event, keys.capacity, keys.remaining, keys.alloc, keys.load, keys.waiting],
                args=[",".join(s.key for s in slots), daily_max, event_days],
            )
            if sequence is not None and int(sequence) == known.sequence:
                pairs = [pair.split(":") for pair in packed.split(",")]
                counted, first = [], 0
                for day_slots in slots_per_day:
                    mine = pairs[first : first + len(day_slots)]
                    first += len(day_slots)
                    counted.append(DayCounts(known, day_slots, [int(c) for c, _ in mine], [int(r) for _, r in mine]))
                return counted
            self._definitions.forget(event_id)
        raise StaleEvent(str(event_id))

    async def is_built(self) -> bool:
        return await self._definitions.is_built()

    async def changes(self) -> AsyncIterator[CounterChange | None]:
        """Every change the scripts announce, as they announce it; None first, once subscribed
        (``common.announcements``: whoever follows must forget what it kept when this raises)."""
        async for message in announcements(self._redis, self._channel):
            yield None if message is None else CounterChange.parse(message)
