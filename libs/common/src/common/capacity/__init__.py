"""Per-slot capacity counters in Redis: the derived state availability reads, and booking (the owner
of capacity) changes.

Every key of one event shares the hash tag ``{evt:<id>}`` so each script's keys live on one
Redis Cluster node; slots are hash fields, so scripts never build key names.
"""

from common.capacity.counters import Hold, UnitInUse, differences, event_counters, lasting_differences
from common.capacity.store import (
    AttemptLimit,
    CapacityStore,
    CounterChange,
    DayCounts,
    Earlier,
    EventKeys,
    Full,
    KnownEvent,
    Limited,
    Rebuilding,
    StaleEvent,
    Taken,
    lua_source,
)

__all__ = [
    "AttemptLimit",
    "Limited",
    "CapacityStore",
    "CounterChange",
    "DayCounts",
    "Earlier",
    "Full",
    "KnownEvent",
    "EventKeys",
    "Rebuilding",
    "StaleEvent",
    "Taken",
    "UnitInUse",
    "Hold",
    "differences",
    "lasting_differences",
    "lua_source",
    "event_counters",
]
