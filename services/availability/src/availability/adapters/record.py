"""The system of record, as the booking service (the owner of capacity) serves it to other services."""

from collections import defaultdict
from dataclasses import dataclass
from uuid import UUID

from aiohttp import ClientSession, ClientTimeout

from common.auth import ServiceTokens
from common.capacity import UnitInUse
from common.contracts import EventData, ShiftData


@dataclass(frozen=True)
class EventRecord:
    sequence: int
    event: EventData
    shifts: list[tuple[int, ShiftData]]


def event_records(items: list[dict]) -> list[EventRecord]:
    """The booking service's snapshot items (``/internal/snapshot``) as events with their shifts."""
    return [
        EventRecord(
            item["sequence"],
            EventData.model_validate(item["event"]),
            [(s["sequence"], ShiftData.model_validate(s["shift"])) for s in item["shifts"]],
        )
        for item in items
    ]


def units_by_event(items: list[dict]) -> dict[UUID, list[UnitInUse]]:
    """The booking service's usage items (``/internal/usage``) as the units they hold, by event."""
    by_event: dict[UUID, list[UnitInUse]] = defaultdict(list)
    for item in items:
        by_event[UUID(item["event_id"])].append(
            UnitInUse(item["slot"], UUID(item["professional_id"]), item["unit"], UUID(item["booking_id"]))
        )
    return by_event


class SystemOfRecord:
    def __init__(self, http: ClientSession, booking_url: str, tokens: ServiceTokens, timeout: float) -> None:
        self._http = http
        self._booking_url = booking_url
        self._tokens = tokens  # availability's own identity, in short-lived tokens the booking service trusts
        self._timeout = ClientTimeout(total=timeout)

    async def _call(self, url: str, event_id: UUID | None, method: str = "GET") -> dict:
        params = {"event_id": str(event_id)} if event_id else {}
        headers = {"Authorization": f"Bearer {self._tokens.token()}"}
        async with self._http.request(method, url, params=params, headers=headers, timeout=self._timeout) as response:
            response.raise_for_status()
            return await response.json()

    async def events(self, event_id: UUID | None = None) -> list[EventRecord]:
        return event_records((await self._call(f"{self._booking_url}/internal/snapshot", event_id))["events"])

    async def confirmed(self, event_id: UUID | None = None) -> dict[UUID, list[UnitInUse]]:
        """The unit each confirmed booking holds, by event."""
        return units_by_event((await self._call(f"{self._booking_url}/internal/usage", event_id))["items"])

    async def audit(self, event_id: UUID | None = None) -> dict:
        """The booking service's audit of the record: every confirmed booking within capacity."""
        return await self._call(f"{self._booking_url}/internal/audit", event_id)

    async def settle(self, event_id: UUID | None = None) -> dict:
        """Have the capacity owner move or flag the bookings the audit found beyond capacity."""
        return await self._call(f"{self._booking_url}/internal/settle", event_id, method="POST")
