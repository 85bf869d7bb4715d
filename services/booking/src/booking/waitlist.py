"""The waitlist: a client may wait for a full slot; a unit freed there is offered to the first
waiter, held for them for the event's ``waitlist_offer_minutes``, and booked when they claim it.

Race-free by construction: while anyone waits for a slot, the take and move scripts give nobody a
unit of it, so a freed unit stays free until ``offer.lua`` holds it for the first waiter (right
after the cancel, move or withdrawal that freed it, and every few seconds in the owner's watch for
the frees that come from elsewhere: a new or longer shift, an expired hold). The offer is a hold
under the entry's id, and the booking a claim makes has that id: the claim commits a booking for
the unit already held, so nobody can book it from under the waiter. Offers are recorded in the
record (and announced, ``waitlist.offered``) after the script made them, by whoever makes the
next offer step should the first recording fail; an unclaimed offer expires in the owner's hold
expiry (``waitlist.expired``) and passes to the next waiter.
"""

import logging
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg

from booking.adapters.capacity import CapacityStore
from booking.adapters.repository import BookingUnitOfWork
from booking.api import WaitlistIn, entry_out
from booking.domain import Booking, WaitlistEntry, reminder_due
from booking.metrics import BOOKINGS_CONFIRMED
from booking.service import BookingService, assigned_to, booking_data
from common.auth import Identity, unauthorized
from common.claim_links import claimed_entry
from common.contracts import BookingData, BookingStatus, Person, WaitlistEntryData, WaitlistStatus
from common.counters import KnownEvent, StaleEvent
from common.errors import Problem, not_found, try_again
from common.events import BookingConfirmed, WaitlistOffered
from common.schedule import Slot

log = logging.getLogger(__name__)


def entry_data(entry: WaitlistEntry) -> WaitlistEntryData:
    return WaitlistEntryData(
        id=entry.id,
        event_id=entry.event_id,
        event_name=entry.event_name,
        start=entry.slot_start,
        end=entry.slot_end,
        client=Person(id=entry.client_id, name=entry.client_name, email=entry.client_email, timezone=entry.client_timezone),
        status=WaitlistStatus(entry.status),
        offer_expires_at=entry.offer_expires_at,
    )


def expired_entry(entry: WaitlistEntry) -> WaitlistEntry:
    return replace(entry, status=WaitlistStatus.EXPIRED.value, offer_expires_at=None, sequence=entry.sequence + 1)


class Offers:
    """Freed units of waited-for slots offered to their waitlists, and the offers recorded."""

    def __init__(self, units_of_work: Callable[..., BookingUnitOfWork], store: CapacityStore) -> None:
        self._uow = units_of_work
        self._store = store

    async def make(self, event_id: UUID, slots: list[Slot] | None = None, heal: bool = False) -> int:
        """Offer what is free in ``slots`` (None: every slot waited for) to their waitlists, and
        record the offers made; ``heal``: every offer the counters hold that the record does not
        yet (one whose recording failed before: the owner's watch heals). Returns how many offers
        were recorded."""
        async with self._uow(shared_lock=event_id) as uow:  # after or before any change of the event, and its expiry of offers
            known = await self._store.event(event_id)  # read under the lock: the event as it stays meanwhile
            if known is None:
                return 0
            if slots is None:
                waited = await self._store.waited_for([event_id])
                slots = [_slot(known, key) for key in waited.get(event_id, [])]
            offer_seconds = known.data.waitlist_offer_minutes * 60
            made = []
            for slot in slots:
                if bookable(known, slot):  # a slot blacked out or out of the hours since is offered to nobody
                    made += await self._store.offer(known, slot, offer_seconds, random.random())
            if heal:
                holds = {h.taken.booking_id: h for h in await self._store.holds(event_id) if h.offer}
            else:
                holds = {entry_id: h for entry_id in made if (h := await self._store.hold(event_id, entry_id)) is not None}
            if not holds:
                return 0
            recorded = 0
            for entry in await uow.record.entries(list(holds), lock=True):
                if entry.status != WaitlistStatus.WAITING.value:
                    continue
                until = datetime.fromtimestamp(holds[entry.id].expires_ms / 1000, UTC)
                offered = replace(entry, status=WaitlistStatus.OFFERED.value, offer_expires_at=until, sequence=entry.sequence + 1)
                await uow.record.save_entry(offered)
                uow.publish(WaitlistOffered.of(offered.id, offered.sequence, entry_data(offered)))
                recorded += 1
        if recorded:
            log.info("event %s: %d waitlist offers made", event_id, recorded)
        return recorded

    async def make_everywhere(self, event_ids: list[UUID]) -> int:
        """Every event's waited-for slots (one Redis round trip when nobody waits)."""
        made = 0
        for event_id, keys in (await self._store.waited_for(event_ids)).items():
            known = await self._store.event(event_id)
            if known is not None:
                made += await self.make(event_id, [_slot(known, key) for key in keys], heal=True)
        return made


def bookable(known: KnownEvent, slot: Slot) -> bool:
    """Whether the event, as it is now, still has the slot and lets it be booked (not begun)."""
    schedule = known.schedule
    return slot.start > datetime.now(UTC) and schedule.slot_starting_at(slot.start) == slot and not schedule.is_blocked(slot)


def _slot(known: KnownEvent, key: str) -> Slot:
    start = datetime.fromtimestamp(int(key), UTC)
    return Slot(start, start + known.schedule.slot_length)


class WaitlistService:
    def __init__(
        self,
        units_of_work: Callable[..., BookingUnitOfWork],
        store: CapacityStore,
        bookings: BookingService,
        offers: Offers,
        claim_secret: str,
    ) -> None:
        self._uow = units_of_work
        self._store = store
        self._bookings = bookings
        self._offers = offers
        self._claim_secret = claim_secret

    async def join(self, client: Identity, request: WaitlistIn) -> tuple[dict, bool]:
        """Wait for a full slot; the entry and whether it is new (a client waits once per slot)."""
        for _ in range(3):
            known, slot = await self._bookings.bookable_slot(request)
            async with self._uow() as uow:
                existing = await uow.record.active_entry(client.id, known.data.id, slot.start)
            if existing is not None:
                return await self._out(existing), False
            entry = WaitlistEntry(
                id=uuid4(), event_id=known.data.id, event_name=known.data.name, slot_start=slot.start, slot_end=slot.end,
                client_id=client.id, client_name=client.name, client_email=request.email, client_timezone=client.timezone,
                status=WaitlistStatus.WAITING.value, offer_expires_at=None, sequence=1,
            )  # fmt: skip
            try:
                position = await self._store.join(known, slot, entry.id)
            except StaleEvent:
                continue
            if position is None:
                raise Problem(409, "slot_available", "Slot available", "That slot has room: book it instead.")
            try:
                async with self._uow() as uow:
                    added = await uow.record.add_waiting(entry)
            except BaseException:
                await self._store.leave(known.data.id, slot, entry.id)
                raise
            if not added:  # the same client joined at the same moment: theirs stands
                await self._store.leave(known.data.id, slot, entry.id)
                continue
            return entry_out(entry_data(entry), position), True
        raise try_again("The event is changing; try again in a moment.")

    async def entries(self, client: Identity) -> list[dict]:
        async with self._uow() as uow:
            found = await uow.record.entries_of(client.id)
        return [await self._out(entry) for entry in found]

    async def withdraw(self, client: Identity, entry_id: UUID) -> dict:
        """Leave the waitlist; an offer held is given back (and offered to the next waiter)."""
        async with self._uow() as uow:
            found = await uow.record.waitlist_entry(entry_id, client.id)
        if found is None:
            raise not_found("waitlist entry")
        slot = Slot(found.slot_start, found.slot_end)
        async with self._uow(shared_lock=found.event_id) as uow:
            entry = await uow.record.waitlist_entry(entry_id, client.id, lock=True)
            assert entry is not None  # entries are never deleted
            if entry.status == WaitlistStatus.BOOKED.value:
                raise Problem(409, "entry_booked", "Already booked", "This place became a booking: cancel the booking instead.")
            if entry.status not in (WaitlistStatus.WAITING.value, WaitlistStatus.OFFERED.value):
                return entry_out(entry_data(entry), None)  # withdrawn or expired already
            await self._store.leave(entry.event_id, slot, entry.id)
            if entry.status == WaitlistStatus.OFFERED.value and (known := await self._store.event(entry.event_id)):
                await self._store.release(known, slot, entry.id, held_only=True)
                uow.after_commit(lambda: self._offers.make(entry.event_id, [slot]))
            entry = replace(entry, status=WaitlistStatus.WITHDRAWN.value, offer_expires_at=None, sequence=entry.sequence + 1)
            await uow.record.save_entry(entry)
        return entry_out(entry_data(entry), None)

    async def claim(self, who: Identity | None, entry_id: UUID, token: str | None) -> tuple[BookingData, bool]:
        """Book the unit offered to the entry: its client signed in, or anyone with the offer's
        link. Returns the booking and whether it was made now (a second claim answers with it)."""
        by_link = token is not None and claimed_entry(token, self._claim_secret, datetime.now(UTC)) == entry_id
        async with self._uow() as uow:
            found = await uow.record.waitlist_entry(entry_id, None if by_link else _client(who))
        if found is None:
            raise not_found("waitlist entry")
        try:
            return await self._claim(found)
        except asyncpg.LockNotAvailableError as exc:
            raise try_again("The event's availability is changing; try again in a moment.") from exc

    async def _claim(self, found: WaitlistEntry) -> tuple[BookingData, bool]:
        async with self._uow(shared_lock=found.event_id) as uow:
            entry = await uow.record.waitlist_entry(found.id, lock=True)
            assert entry is not None
            if entry.status == WaitlistStatus.BOOKED.value:
                booking = await uow.record.booking(entry.id)
                assert booking is not None  # booked: the booking has the entry's id
                return booking_data(booking), False
            if entry.status != WaitlistStatus.OFFERED.value:
                raise Problem(409, "no_offer", "No offer", f"Nothing is offered to this place ({entry.status}).")
            known = await self._store.event(entry.event_id)
            held = await self._store.hold(entry.event_id, entry.id)
            expired_already = entry.offer_expires_at is None or entry.offer_expires_at <= datetime.now(UTC)
            if known is None or held is None or expired_already:
                raise Problem(409, "no_offer", "No offer", "The offer has expired.")
            if not bookable(known, Slot(entry.slot_start, entry.slot_end)):
                raise Problem(409, "no_offer", "No offer", "That time can no longer be booked (blacked out, or begun).")
            professional = await self._store.professional(entry.event_id, held.taken.professional_id)
            booking = Booking(
                id=entry.id, event_id=entry.event_id, event_name=entry.event_name, slot_start=entry.slot_start,
                slot_end=entry.slot_end, status=BookingStatus.CONFIRMED.value, client_id=entry.client_id,
                client_name=entry.client_name, client_email=entry.client_email, client_timezone=entry.client_timezone,
                **assigned_to(professional), unit=held.taken.unit, assignment={"waitlist": str(entry.id)},
                idempotency_key=None, request_fingerprint="", sequence=1,
                reminder_at=reminder_due(entry.slot_start, known.data.reminder_hours, datetime.now(UTC)),
            )  # fmt: skip
            data = booking_data(booking)
            if not await uow.record.add_confirmed(booking, known.sequence, BookingConfirmed.of(booking.id, 1, data)):
                raise try_again("The event's availability is changing; try again in a moment.")
            uow.published_by_statement()
            await uow.record.save_entry(replace(entry, status=WaitlistStatus.BOOKED.value, sequence=entry.sequence + 1))
            uow.after_commit(lambda: self._store.confirm(entry.event_id, entry.id))
        BOOKINGS_CONFIRMED.inc()
        return data, True

    async def _out(self, entry: WaitlistEntry) -> dict:
        position = None
        if entry.status == WaitlistStatus.WAITING.value:
            queue = await self._store.waitlist(entry.event_id, Slot(entry.slot_start, entry.slot_end))
            position = queue.index(entry.id) + 1 if entry.id in queue else None
        return entry_out(entry_data(entry), position)


def _client(who: Identity | None) -> UUID:
    if who is None:
        raise unauthorized("Sign in, or claim with the link from the offer's mail.")
    return who.id
