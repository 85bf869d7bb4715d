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
class UnitInUse:
    """One unit of a professional's capacity in a slot, taken by a booking (confirmed or held)."""

    slot: str
    professional_id: UUID
    unit: int
    booking_id: UUID


@dataclass(frozen=True)
class Hold:
    """A unit taken for a booking whose commit has not been confirmed; it expires by itself."""

    taken: UnitInUse
    day: str
    expires_ms: int


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


def hold_state(hold: Hold) -> dict:
    """What the holds hash holds for a hold."""
    t = hold.taken
    return {"slot": t.slot, "professional": str(t.professional_id), "unit": t.unit, "day": hold.day}


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def event_counters(
    event_sequence: int,
    event: EventData,
    shifts: list[tuple[int, ShiftData]],
    confirmed: list[UnitInUse],
    holds: list[Hold] = (),
) -> dict[str, dict[str, str]]:
    """Every hash of the event (and the hold expiry set), by the name of its key in ``EventKeys``."""
    capacity: dict[str, dict[str, int]] = defaultdict(dict)
    units: dict[str, dict[str, dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
    shift_states, professionals = {}, {}
    for sequence, shift in shifts:
        shift_states[str(shift.id)] = _json(shift_state(shift) | {"sequence": sequence})
        professionals[str(shift.professional_id)] = shift.professional.model_dump_json()
        if shift.status is ShiftStatus.ACTIVE:
            pro = str(shift.professional_id)
            for slot in shift_slots(shift):
                capacity[slot][pro] = capacity[slot].get(pro, 0) + shift.capacity
    load: dict[str, int] = defaultdict(int)
    schedule = event.schedule()
    for taken in [*confirmed, *(h.taken for h in holds)]:
        pro = str(taken.professional_id)
        units[taken.slot][pro][str(taken.unit)] = str(taken.booking_id)
        day = schedule.event_day_of(datetime.fromtimestamp(int(taken.slot), UTC))
        load[f"{day.isoformat()}|{pro}"] += 1
    slots = sorted(set(capacity) | set(units))

    def used(slot: str) -> int:
        return sum(len(u) for u in units.get(slot, {}).values())

    return {
        "event": {"sequence": str(event_sequence), "doc": event.model_dump_json()},
        "shifts": shift_states,
        "alloc": {s: _json({"c": capacity.get(s, {}), "u": units.get(s, {})}) for s in slots},
        "capacity": {s: str(sum(capacity.get(s, {}).values())) for s in slots},
        "remaining": {s: str(sum(capacity.get(s, {}).values()) - used(s)) for s in slots},
        "load": {field: str(n) for field, n in load.items()},
        "professionals": professionals,
        "holds": {str(h.taken.booking_id): _json(hold_state(h)) for h in holds},
        "hold_expiry": {str(h.taken.booking_id): str(h.expires_ms) for h in holds},
    }


def differences(live: dict[str, dict[str, str]], built: dict[str, dict[str, str]]) -> dict[str, list[str]]:
    """Per key, the fields whose values differ (JSON compared by meaning, not by spelling)."""

    def value(raw: str | None):
        return json.loads(raw) if raw and raw[:1] in "{[" else raw

    found = {}
    for name in built.keys() | live.keys():
        a, b = live.get(name, {}), built.get(name, {})
        fields = sorted(f for f in a.keys() | b.keys() if value(a.get(f)) != value(b.get(f)))
        if fields:
            found[name] = fields
    return found


Look = tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]  # (what Redis holds, what the record gives)


def lasting_differences(first: Look, second: Look) -> dict[str, list[str]]:
    """The differences of ``second`` that ``first`` had too, with neither side having moved between
    the looks. A booking in flight between reading the record and reading Redis shows up as a
    difference once; under steady load a different one each time. A real drift stays put."""
    (live_1, built_1), (live_2, built_2) = first, second
    found = {}
    for name, fields in differences(live_2, built_2).items():
        # Unchanged on both sides between the looks, so the first look disagreed the same way.
        lasting = [
            f
            for f in fields
            if live_1.get(name, {}).get(f) == live_2.get(name, {}).get(f)
            and built_1.get(name, {}).get(f) == built_2.get(name, {}).get(f)
        ]
        if lasting:
            found[name] = lasting
    return found
