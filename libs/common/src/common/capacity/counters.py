"""An event's counters computed from the system of record: pure, the same state the scripts keep.

Rebuilding Redis from PostgreSQL is this computation plus an atomic swap (see ``store``).
"""

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from common.contracts import EventData, ShiftData, ShiftStatus


@dataclass(frozen=True)
class Usage:
    """Confirmed bookings of one professional in one slot."""

    slot: str
    professional_id: UUID
    count: int


def shift_slots(shift: ShiftData) -> list[str]:
    step = shift.slot_minutes * 60
    first, end = int(shift.start.timestamp()), int(shift.end.timestamp())
    return [str(t) for t in range(first, end - step + 1, step)]


def shift_state(shift: ShiftData) -> dict:
    """What the shifts hash holds for a shift (the script adds its sequence)."""
    return {
        "professional_id": str(shift.professional_id),
        "capacity": shift.capacity,
        "active": shift.status is ShiftStatus.ACTIVE,
        "slots": shift_slots(shift),
    }


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def event_counters(
    event_sequence: int, event: EventData, shifts: list[tuple[int, ShiftData]], usage: list[Usage]
) -> dict[str, dict[str, str]]:
    """Every hash of the event, by the name of its key in ``EventKeys``."""
    capacity: dict[str, dict[str, int]] = defaultdict(dict)
    used: dict[str, dict[str, int]] = defaultdict(dict)
    shift_states, professionals = {}, {}
    for sequence, shift in shifts:
        shift_states[str(shift.id)] = _json(shift_state(shift) | {"sequence": sequence})
        professionals[str(shift.professional_id)] = shift.professional.model_dump_json()
        if shift.status is ShiftStatus.ACTIVE:
            for slot in shift_slots(shift):
                pro = str(shift.professional_id)
                capacity[slot][pro] = capacity[slot].get(pro, 0) + shift.capacity
    load: dict[str, int] = defaultdict(int)
    schedule = event.schedule()
    for row in usage:
        pro = str(row.professional_id)
        used[row.slot][pro] = used[row.slot].get(pro, 0) + row.count
        day = schedule.event_day_of(datetime.fromtimestamp(int(row.slot), UTC))
        load[f"{day.isoformat()}|{pro}"] += row.count
    slots = sorted(set(capacity) | set(used))
    return {
        "event": {"sequence": str(event_sequence), "doc": event.model_dump_json()},
        "shifts": shift_states,
        "alloc": {s: _json({"c": capacity.get(s, {}), "u": used.get(s, {})}) for s in slots},
        "capacity": {s: str(sum(capacity.get(s, {}).values())) for s in slots},
        "remaining": {s: str(sum(capacity.get(s, {}).values()) - sum(used.get(s, {}).values())) for s in slots},
        "load": {field: str(n) for field, n in load.items() if n},
        "professionals": professionals,
    }
