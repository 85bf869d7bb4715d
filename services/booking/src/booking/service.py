"""Booking use cases.

A booking takes its unit of capacity in Redis first (one script, which also checks the client's
Idempotency-Key), so a refusal never reaches PostgreSQL; then one PostgreSQL transaction writes
the booking and its event, checked against the capacity record under the event's shared lock
(``booking.owner`` holds it exclusively while it applies a change that takes capacity away).
"""

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg

from booking.adapters.capacity import AttemptLimit, CapacityStore, Earlier, Full, Limited, Taken
from booking.adapters.repository import BookingUnitOfWork
from booking.api import BookingIn, RescheduleIn, SlotRequest, key_reused, rule_breached, slot_unavailable
from booking.domain import Booking, reminder_due
from booking.metrics import BOOKINGS_CONFIRMED, HOLDS_IN_FLIGHT, count_refusal
from common.auth import Identity
from common.contracts import BookingData, BookingStatus, Person, RescheduledBookingData
from common.counters import KnownEvent, StaleEvent
from common.errors import Problem, not_found, rate_limited, try_again
from common.events import BookingCancelled, BookingConfirmed, BookingRescheduled
from common.metrics import LIMITS_HIT
from common.roles import Role
from common.schedule import Slot
from common.unit_of_work import CONNECTION_LOST, CommitLost

log = logging.getLogger(__name__)

STALE_RETRIES = 3  # takes tried again after the event changed under them
IN_FLIGHT_WAIT_SECONDS = 3.0  # how long a retry waits for the attempt it races to finish
IDEMPOTENCY_KEEP_SECONDS = 7 * 24 * 3600  # a committed booking answers retries of its key this long from Redis


def booking_data(row: Booking, reason: str | None = None) -> BookingData:
    return BookingData(
        id=row.id,
        event_id=row.event_id,
        event_name=row.event_name,
        start=row.slot_start,
        end=row.slot_end,
        status=BookingStatus(row.status),
        client=Person(id=row.client_id, name=row.client_name, email=row.client_email, timezone=row.client_timezone),
        professional=Person(
            id=row.professional_id,
            name=row.professional_name,
            email=row.professional_email,
            timezone=row.professional_timezone,
        ),
        reason=reason,
        reminder_at=row.reminder_at,
    )


def fingerprint(request: BookingIn) -> str:
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()


def unavailable(known: KnownEvent, slot: Slot, full: Full) -> Problem:
    """409 ``slot_unavailable``, offering the nearest slots of the same day that still have room."""
    open_slots = [s for s, left in zip(full.slots, full.remaining, strict=True) if left > 0 and not known.schedule.is_blocked(s)]
    return slot_unavailable(slot, open_slots)


def assigned_to(pro: Person) -> dict:
    """A booking's columns that name its professional."""
    return {
        "professional_id": pro.id,
        "professional_name": pro.name,
        "professional_email": pro.email,
        "professional_timezone": pro.timezone,
    }


def new_booking(
    booking_id: UUID,
    client: Identity,
    request: BookingIn,
    key: str | None,
    known: KnownEvent,
    slot: Slot,
    taken: Taken,
    assignment: dict,
    request_fingerprint: str,
) -> Booking:
    """A new confirmed booking holding ``taken``."""
    return Booking(
        id=booking_id,
        event_id=known.data.id,
        event_name=known.data.name,
        slot_start=slot.start,
        slot_end=slot.end,
        status=BookingStatus.CONFIRMED.value,
        client_id=client.id,
        client_name=client.name,
        client_email=request.email,
        client_timezone=client.timezone,
        **assigned_to(taken.professional),
        unit=taken.unit,
        assignment=assignment,
        idempotency_key=key,
        request_fingerprint=request_fingerprint,
        sequence=1,
        reminder_at=reminder_due(slot.start, known.data.reminder_hours, datetime.now(UTC)),
    )


def moved_booking(booking: Booking, known: KnownEvent, slot: Slot, taken: Taken, assignment: dict) -> Booking:
    """``booking`` confirmed at ``slot``, holding ``taken``; its reminder moved with it."""
    return replace(
        booking,
        slot_start=slot.start,
        slot_end=slot.end,
        status=BookingStatus.CONFIRMED.value,
        **assigned_to(taken.professional),
        unit=taken.unit,
        assignment=assignment,
        sequence=booking.sequence + 1,
        reminder_at=reminder_due(slot.start, known.data.reminder_hours, datetime.now(UTC)),
    )


class BookingService:
    def __init__(
        self,
        units_of_work: Callable[..., BookingUnitOfWork],
        store: CapacityStore,
        hold_seconds: float,
        deadline_seconds: float,
        attempts_per_minute: int,
        freed: Callable[[UUID, list[Slot]], Awaitable[int]] | None = None,
    ) -> None:
        self._uow = units_of_work
        self._store = store
        self._hold_seconds = hold_seconds
        self._deadline_seconds = deadline_seconds
        self._attempts_per_minute = attempts_per_minute
        # Told of the slots a cancel or a move freed a unit in, once it is free: the waitlist's
        # offers (booking.waitlist.Offers), which the owner's watch also makes every few seconds.
        self._freed = freed

    async def book(self, client: Identity, request: BookingIn, idempotency_key: str | None) -> tuple[BookingData, bool]:
        """Book a slot; returns the booking and whether it was created now (False: a retry).

        Everything up to a unit taken is Redis and memory: a full slot, a blocked slot, a replayed
        key and a client over its attempts are answered without PostgreSQL. Then one transaction;
        once COMMIT succeeded the booking is answered as made, whatever fails after."""
        try:
            booking, created = await self._book(client, request, idempotency_key)
        except Problem as refusal:
            count_refusal(refusal)
            raise
        if created:
            BOOKINGS_CONFIRMED.inc()
        return booking, created

    async def _book(self, client: Identity, request: BookingIn, idempotency_key: str | None) -> tuple[BookingData, bool]:
        deadline = time.monotonic() + self._deadline_seconds
        fp = fingerprint(request)
        record_key = self._store.idempotency_key(request.event_id, client.id, idempotency_key) if idempotency_key else None
        limit = AttemptLimit(client.id, self._attempts_per_minute)
        known, slot = await self.bookable_slot(request)
        waited_until = time.monotonic() + IN_FLIGHT_WAIT_SECONDS
        for _ in range(STALE_RETRIES):
            while True:
                booking_id, chance = uuid4(), random.random()
                known, slot, taken = await self._take(request, known, slot, chance, booking_id, record_key, fp, limit)
                if isinstance(taken, Limited):
                    LIMITS_HIT.labels("booking_attempts").inc()
                    raise rate_limited(taken.retry_after, "booking attempts")
                if not isinstance(taken, Earlier):
                    break
                earlier = await self._earlier(taken, fp, client, idempotency_key, record_key, waited_until)
                if earlier is not None:
                    return earlier, False
            if isinstance(taken, Full):
                raise unavailable(known, slot, taken)
            assignment = {"eligible": taken.eligible, "random": chance}
            booking = new_booking(booking_id, client, request, idempotency_key, known, slot, taken, assignment, fp)
            data = booking_data(booking)
            with HOLDS_IN_FLIGHT.track_inprogress():  # until the hold is confirmed or given back
                try:
                    await self._commit(booking, BookingConfirmed.of(booking_id, 1, data), known, slot, deadline, record_key)
                except _KeyTaken:
                    earlier = await self._recorded_attempt(client.id, idempotency_key, fp)
                    if earlier is None:
                        raise try_again("Try again in a moment.") from None
                    return earlier, False
                except _RecordMoved:  # a change took the unit's capacity as we booked: its unit is back; take afresh
                    known, slot = await self.bookable_slot(request)
                    continue
                answer = Earlier("done", booking_id, fp, data.model_dump_json())
                await self._after_confirmed(known.data.id, booking_id, record_key, answer)
            return data, True
        raise try_again("The event's availability is changing; try again in a moment.")

    async def _take(self, request, known, slot, chance, booking_id, record_key, fp, limit):
        for _ in range(STALE_RETRIES):
            try:
                taken = await self._store.take(known, slot, chance, booking_id, self._hold_seconds, record_key, fp, limit)
                return known, slot, taken
            except StaleEvent:  # the event changed under us: check the slot against the new definition
                known, slot = await self.bookable_slot(request)
        raise try_again("The event is changing; try again in a moment.")

    async def _earlier(
        self, earlier: Earlier, fp: str, client: Identity, key: str | None, record_key: str, waited_until: float
    ) -> BookingData | None:
        """The booking an earlier attempt with this key made; None when that attempt gave up (take afresh).
        An attempt still in flight is waited for; one that never finished is looked up in the record."""
        while True:
            if earlier.fingerprint != fp:
                raise key_reused()
            if earlier.state == "done" and earlier.data:
                return BookingData.model_validate_json(earlier.data)
            if time.monotonic() >= waited_until:
                # Its process may have died after its COMMIT: the record knows.
                found = await self._recorded_attempt(client.id, key, fp)
                if found is None:
                    raise try_again("An earlier attempt with this Idempotency-Key is still in progress.")
                return found
            await asyncio.sleep(0.05)
            latest = await self._store.earlier(record_key)
            if latest is None:
                return None
            earlier = latest

    async def _recorded_attempt(self, client_id: UUID, key: str | None, fp: str) -> BookingData | None:
        """The slow path, for what Redis no longer knows: the booking the record holds for this key."""
        if key is None:
            return None
        async with self._uow() as uow:
            found = await uow.record.booking_for_key(client_id, key)
        if found is None:
            return None
        if found.request_fingerprint != fp:
            raise key_reused()
        return booking_data(found)

    async def _commit(
        self, booking: Booking, event: BookingConfirmed, known: KnownEvent, slot: Slot, deadline: float, record_key: str | None
    ) -> None:
        """One unit of work of three round trips: BEGIN with the event's shared lock, the booking
        with its outbox row, COMMIT. Not committed, the unit goes back (the unit of work's
        compensation); a COMMIT whose answer is lost is resolved by asking the record, and the unit
        is never given back blindly."""
        try:
            async with self._uow(shared_lock=known.data.id) as uow:
                uow.on_rollback(lambda: self._give_back(known, slot, booking.id, record_key))
                uow.if_commit_lost(lambda: self._committed(booking.id))
                if not await uow.record.add_confirmed(booking, known.sequence, event):
                    raise _RecordMoved
                uow.published_by_statement()
                if time.monotonic() >= deadline:
                    raise try_again("Booking took too long; try again.")
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "bookings_idempotency":
                raise _KeyTaken from exc
            if exc.constraint_name == "bookings_one_per_unit":
                log.error("Redis handed out a unit the record holds: %s %s", known.data.id, slot.key)
                raise try_again("Availability is being corrected; try again in a moment.") from exc
            raise
        except asyncpg.LockNotAvailableError as exc:
            raise try_again("The event's availability is changing; try again in a moment.") from exc
        except CommitLost as lost:
            if lost.committed is False:
                raise try_again("The booking was not made; try again.") from lost
            # Unknown: the hold stays and expires unless the record has the booking (reconcile checks).
            raise try_again("Could not confirm the booking; retry with the same Idempotency-Key.") from lost

    async def _committed(self, booking_id: UUID) -> bool | None:
        """Whether the record holds the booking; None when PostgreSQL cannot be asked for a few seconds."""
        for attempt in range(20):
            try:
                async with self._uow() as uow:
                    return await uow.record.has_booking(booking_id)
            except CONNECTION_LOST + (asyncpg.PostgresError,):
                await asyncio.sleep(min(0.05 * (attempt + 1), 0.5))
        return None

    async def _give_back(self, known: KnownEvent, slot: Slot, booking_id: UUID, record_key: str | None) -> None:
        """The booking was not committed: its unit goes back now, and a retry with its key starts
        afresh (were Redis unreachable, the hold expires)."""
        try:
            await self._store.release(known, slot, booking_id, idempotency_key=record_key)
        except Exception:
            log.exception("could not give back the unit of uncommitted booking %s; its hold expires", booking_id)

    async def _after_confirmed(self, event_id: UUID, booking_id: UUID, record_key: str | None, answer: Earlier) -> None:
        """The booking is committed: drop its hold, remember it for retries. A failure here changes
        nothing for the client (reconcile drops the hold of a booking the record has)."""
        try:
            await self._store.confirm(event_id, booking_id, record_key, answer, IDEMPOTENCY_KEEP_SECONDS)
        except Exception:
            log.exception("booking %s is committed; could not confirm its hold in Redis", booking_id)

    async def bookable_slot(self, request: SlotRequest) -> tuple[KnownEvent, Slot]:
        """The slot a booking (or a reschedule) asks for, checked against the event's definition and
        booking rules: a 4xx problem for one that cannot be booked now."""
        known = await self._store.current_event(request.event_id)
        if known is None:
            if not await self._store.is_built() or await self._defined(request.event_id):
                # Redis lost the counters (all of them, or one cluster node's): rebuilt in seconds.
                raise try_again("The event's availability is being rebuilt; try again in a moment.")
            raise Problem(422, "unknown_event", "Unknown event", "No event has that event_id.")
        schedule = known.schedule
        slot = schedule.slot_starting_at(request.start)
        if slot is None:
            day = schedule.event_day_of(request.start)
            if not schedule.start_date <= day <= schedule.end_date:
                raise Problem(422, "outside_event", "Outside the event", "The event does not run on that date.")
            raise Problem(422, "not_slot_start", "Not a slot start", "start must be the start of one of the event's slots.")
        now = datetime.now(UTC)
        if slot.start <= now:
            raise Problem(422, "slot_in_past", "Slot in the past", "That slot has already begun.")
        if schedule.is_blocked(slot):
            raise Problem(409, "slot_blocked", "Slot blocked", "That slot is blacked out.")
        if (breach := known.data.breach(slot.start, now)) is not None:
            raise rule_breached(known.data, breach)
        return known, slot

    async def list_bookings(self, who: Identity, cursor: UUID | None, limit: int) -> list[BookingData]:
        async with self._uow() as uow:
            return [booking_data(b) for b in await uow.record.bookings_of(who, cursor, limit)]

    async def get_booking(self, who: Identity, booking_id: UUID) -> tuple[BookingData, dict]:
        """The booking, and why its professional was chosen (shown to admins)."""
        async with self._uow() as uow:
            booking = await uow.record.booking(booking_id, who)
        if booking is None:
            raise not_found("booking")  # someone else's booking is as good as absent
        return booking_data(booking), booking.assignment

    async def cancel(self, who: Identity, booking_id: UUID) -> BookingData:
        if who.role is Role.PROFESSIONAL:
            raise not_found("booking")  # professionals see their appointments but do not cancel them
        async with self._uow() as uow:
            booking = await self._locked(uow, booking_id, who)
            if booking.status == BookingStatus.CANCELLED.value:
                return booking_data(booking)  # cancelling twice is harmless
            if booking.status == BookingStatus.CONFIRMED.value:  # it held a unit: give it back once the cancel is durable
                uow.after_commit(lambda: self._release(booking.event_id, Slot(booking.slot_start, booking.slot_end), booking.id))
                uow.after_commit(lambda: self._offer_freed(booking.event_id, Slot(booking.slot_start, booking.slot_end)))
            booking.status = BookingStatus.CANCELLED.value
            booking.sequence += 1
            await uow.record.save(booking)
            reason = "cancelled by the client" if who.role is Role.CLIENT else "cancelled by an admin"
            data = booking_data(booking, reason)
            uow.publish(BookingCancelled.of(booking.id, booking.sequence, data))
        return data

    @staticmethod
    async def _locked(uow: BookingUnitOfWork, booking_id: UUID, who: Identity) -> Booking:
        """The booking ``who`` may see, locked for this transaction: in the event's order first (after
        or before a capacity change, by its shared lock), then the row itself, read afresh."""
        found = await uow.record.booking(booking_id, who)
        if found is None:
            raise not_found("booking")  # someone else's booking is as good as absent
        await uow.record.lock_event(found.event_id, exclusive=False)
        booking = await uow.record.booking(booking_id, who, lock=True)
        assert booking is not None  # bookings are never deleted
        return booking

    async def reschedule(
        self, who: Identity, booking_id: UUID, request: RescheduleIn, idempotency_key: str | None
    ) -> BookingData:
        """Move a booking to the slot starting at ``request.start``: in Redis the new unit taken and
        the old one given back in one step, then the record in one transaction, under the event's
        shared lock and the booking's row lock (so a cancel or another reschedule of it waits). A
        full slot is a 409 and changes nothing; with an Idempotency-Key a retry moves once."""
        fp = fingerprint(request)
        for _ in range(STALE_RETRIES):
            try:
                return await self._reschedule(who, booking_id, request, idempotency_key, fp)
            except (StaleEvent, _RecordMoved):  # the event changed under the move: nothing was kept; again
                continue
            except CommitLost as lost:
                raise try_again("Could not confirm the move; retry with the same Idempotency-Key.") from lost
            except asyncpg.LockNotAvailableError as exc:
                raise try_again("The event's availability is changing; try again in a moment.") from exc
        raise try_again("The event's availability is changing; try again in a moment.")

    async def _reschedule(self, who: Identity, booking_id: UUID, request: RescheduleIn, key: str | None, fp: str) -> BookingData:
        async with self._uow() as uow:
            booking = await self._locked(uow, booking_id, who)
            if key is not None and (earlier := await uow.record.reschedule_for_key(booking.id, key)) is not None:
                if earlier != fp:
                    raise key_reused()
                return booking_data(booking)  # moved once already: as it is now
            if booking.status == BookingStatus.CANCELLED.value:
                raise Problem(409, "booking_cancelled", "Booking cancelled", "A cancelled booking cannot be moved; book anew.")
            if booking.slot_start <= datetime.now(UTC):
                raise Problem(422, "booking_begun", "Appointment begun", "An appointment that has begun cannot be moved.")
            known, slot = await self.bookable_slot(SlotRequest(event_id=booking.event_id, start=request.start))
            if slot.start == booking.slot_start and booking.status == BookingStatus.CONFIRMED.value:
                return booking_data(booking)  # already there
            held = Slot(booking.slot_start, booking.slot_end) if booking.status == BookingStatus.CONFIRMED.value else None
            chance = random.random()
            taken = await self._store.move(known, held, slot, booking.id, booking.professional_id, chance)
            if isinstance(taken, Full):
                raise unavailable(known, slot, taken)
            uow.on_rollback(lambda: self._move_back(known, slot, held, booking))
            before = booking_data(booking)
            moved = moved_booking(booking, known, slot, taken, {"eligible": taken.eligible, "random": chance})
            if not await uow.record.move(moved, known.sequence):
                raise _RecordMoved
            if key is not None:
                await uow.record.remember_reschedule(moved.id, key, fp)
            data = RescheduledBookingData(
                **booking_data(moved).model_dump(),
                previous_start=before.start,
                previous_end=before.end,
                previous_professional=before.professional,
            )
            uow.publish(BookingRescheduled.of(moved.id, moved.sequence, data))
            if held is not None:
                uow.after_commit(lambda: self._offer_freed(moved.event_id, held))
        return booking_data(moved)

    async def _offer_freed(self, event_id: UUID, slot: Slot) -> None:
        if self._freed is not None:
            await self._freed(event_id, [slot])

    async def _move_back(self, known: KnownEvent, moved_to: Slot, held: Slot | None, booking: Booking) -> None:
        """The move was not committed: the booking goes back where the record has it (its own
        professional first). Were that slot taken meanwhile, the record's booking is left without
        a unit in the counters, and the next reconcile moves or flags it as for any lost unit."""
        try:
            if held is None:
                await self._store.release(known, moved_to, booking.id)
                return
            back = await self._store.move(known, moved_to, held, booking.id, booking.professional_id, random.random())
            if isinstance(back, Full):
                log.warning(
                    "booking %s could not go back to %s after its move failed; reconcile repairs it", booking.id, held.key
                )
        except Exception:
            log.exception("could not move booking %s back after its move failed; reconcile repairs it", booking.id)

    async def _release(self, event_id: UUID, slot: Slot, booking_id: UUID) -> None:
        """A cancelled booking's unit back, wherever the owner has put it meanwhile (were Redis
        unreachable, the next reconcile gives it back)."""
        known = await self._store.event(event_id)
        if known is not None:
            await self._store.release(known, slot, booking_id)

    async def _defined(self, event_id: UUID) -> bool:
        """Whether the record defines the event (asked only for an event the counters do not have)."""
        async with self._uow() as uow:
            return await uow.record.event_definition(event_id) is not None

    async def distribution(self, event_id: UUID) -> dict:
        """Confirmed bookings per professional (and per event day), for auditing fair assignment."""
        async with self._uow() as uow:
            rows = await uow.record.confirmed_slots(event_id)
        known = await self._store.event(event_id)
        zone = known.schedule.zone if known else UTC
        professionals: dict[UUID, dict] = {}
        for pro_id, name, start in rows:
            entry = professionals.setdefault(pro_id, {"id": str(pro_id), "name": name, "bookings": 0, "by_day": {}})
            entry["bookings"] += 1
            day = start.astimezone(zone).date().isoformat()
            entry["by_day"][day] = entry["by_day"].get(day, 0) + 1
        counts = [p["bookings"] for p in professionals.values()]
        mean = sum(counts) / len(counts) if counts else 0
        return {
            "event_id": str(event_id),
            "professionals": sorted(professionals.values(), key=lambda p: p["name"]),
            "mean": mean,
            "largest_deviation_from_mean": max((abs(c - mean) for c in counts), default=0),
        }


class _RecordMoved(Exception):
    """The record no longer gives the unit taken (a shift or event change committed between the
    take and the booking's commit); the unit went back with the rollback."""


class _KeyTaken(Exception):
    """The record already holds a booking for this client's Idempotency-Key (Redis had forgotten it)."""
