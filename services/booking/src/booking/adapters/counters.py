"""An event's counters computed from the record: pure, the very state the scripts keep, so a
rebuild can be checked for giving identical counters and a reconcile can compare them.

Rebuilding Redis from PostgreSQL is this computation plus one script that swaps it in, keeping
the holds in flight (``capacity.CapacityStore.replace_event``).
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
class EventRecord:
    """An event as the owner's record holds it: its definition and its shifts, each with the
    sequence it was applied at."""

    sequence: int
    event: EventData
    shifts: list[tuple[int, ShiftData]]


@dataclass(frozen=True)
class Hold:
    """A unit taken for a booking whose commit has not been confirmed, or (``offer``) offered to a
    waitlist entry (``taken.booking_id``: the entry's id, which a claim books under); it expires
    by itself."""

    taken: UnitInUse
    day: str
    expires_ms: int
    offer: bool = False


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
    state = {"slot": t.slot, "professional": str(t.professional_id), "unit": t.unit, "day": hold.day}
    return state | ({"offer": True} if hold.offer else {})


def holds_in(state: dict[str, dict[str, str]]) -> list[Hold]:
    """The holds of an event's stored state (its ``holds`` hash and ``hold_expiry`` set, as ``raw``
    reads them)."""
    found = []
    for booking_id, held in state["holds"].items():
        h = json.loads(held)
        taken = UnitInUse(h["slot"], UUID(h["professional"]), int(h["unit"]), UUID(booking_id))
        found.append(Hold(taken, h["day"], int(state["hold_expiry"].get(booking_id, 0)), bool(h.get("offer"))))
    return found


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def event_counters(
    event_sequence: int,
    event: EventData,
    shifts: list[tuple[int, ShiftData]],
    confirmed: list[UnitInUse],
    holds: list[Hold] = (),
    waiting: dict[str, list[UUID]] | None = None,
) -> dict[str, dict[str, str]]:
    """Every hash of the event (and the hold expiry set), by the name of its key in ``EventKeys``;
    ``waiting``: each slot's waitlist, first first."""
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
        "waiting": {slot: _json([str(e) for e in entries]) for slot, entries in (waiting or {}).items() if entries},
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
