"""The availability service's kept answers: served again only while nothing they show was announced
changed, never older than their bound, and nothing kept while announcements may be missed."""

import asyncio
from datetime import date
from uuid import uuid4

from availability.domain import KeptAnswers
from availability.service import Availability
from availability.streams import StreamSettings
from common.counters import CounterChange
from common.errors import Problem

EVENT, OTHER = uuid4(), uuid4()
MONDAY, TUESDAY = (EVENT, date(2030, 5, 6), None), (EVENT, date(2030, 5, 7), None)
EDGE_KEEP = 0.05  # availability's EDGE_KEEP_SECONDS
MAX_AGE = 0.2


def following() -> KeptAnswers[str]:
    kept: KeptAnswers[str] = KeptAnswers(MAX_AGE)
    kept.follow()
    return kept


def test_an_answer_is_served_again_until_its_bound_passes():
    kept = following()
    assert kept.keep(MONDAY, "monday", ("s1", "s2"), read_at=0.0, started=kept.read_started())
    assert kept.get(MONDAY, 0.0) == "monday"
    assert kept.get(MONDAY, MAX_AGE - 0.001) == "monday"
    assert kept.get(MONDAY, MAX_AGE) is None  # read afresh, announced or not
    assert kept.get(TUESDAY, 0.0) is None


def test_a_changed_slot_drops_exactly_the_answers_that_show_it():
    kept = following()
    kept.keep(MONDAY, "monday", ("s1", "s2"), 10.0, kept.read_started())
    kept.keep(TUESDAY, "tuesday", ("s3",), 10.0, kept.read_started())
    kept.keep((OTHER, MONDAY[1], None), "other event", ("s1",), 10.0, kept.read_started())
    kept.changed(EVENT, "s2")
    assert kept.get(MONDAY, 10.0) is None
    assert kept.get(TUESDAY, 10.0) == "tuesday"
    assert kept.get((OTHER, MONDAY[1], None), 10.0) == "other event"  # the same slot key, another event


def test_a_change_of_the_whole_event_drops_all_its_answers():
    kept = following()
    kept.keep(MONDAY, "monday", ("s1",), 10.0, kept.read_started())
    kept.keep(TUESDAY, "tuesday", (), 10.0, kept.read_started())  # a day with no slots
    kept.changed(EVENT, None)
    assert kept.get(MONDAY, 10.0) is None and kept.get(TUESDAY, 10.0) is None
    assert len(kept) == 0


def test_a_read_that_a_change_overtook_is_not_kept():
    """The read began, a slot it shows changed (its announcement came first), then its answer came
    back: it may hold the counters from before the change."""
    kept = following()
    started = kept.read_started()
    kept.changed(EVENT, "s2")
    assert not kept.keep(MONDAY, "before the change?", ("s1", "s2"), 10.0, started)
    assert kept.get(MONDAY, 10.0) is None
    kept.changed(EVENT, "s9")  # a slot this day does not show: the next read is kept
    assert kept.keep(MONDAY, "monday", ("s1", "s2"), 10.0, kept.read_started() - 1)
    started = kept.read_started()
    kept.changed(EVENT, None)
    assert not kept.keep(TUESDAY, "tuesday", ("s3",), 10.0, started)


def test_nothing_is_kept_while_announcements_are_not_followed():
    kept: KeptAnswers[str] = KeptAnswers(MAX_AGE)
    assert not kept.keep(MONDAY, "monday", ("s1",), 10.0, kept.read_started())  # not subscribed yet
    kept.follow()
    kept.keep(MONDAY, "monday", ("s1",), 10.0, kept.read_started())
    started = kept.read_started()
    kept.lost()  # the subscription broke: announcements may be missed from here
    assert kept.get(MONDAY, 10.0) is None
    assert not kept.keep(TUESDAY, "tuesday", ("s3",), 10.0, started)
    kept.follow()
    assert not kept.keep(TUESDAY, "tuesday", ("s3",), 10.0, started)  # began before the gap
    assert kept.keep(TUESDAY, "tuesday", ("s3",), 10.0, kept.read_started())


def test_the_oldest_answer_makes_room():
    kept: KeptAnswers[str] = KeptAnswers(MAX_AGE, max_kept=2)
    kept.follow()
    for day in (1, 2, 3):
        kept.keep((EVENT, date(2026, 5, day), None), f"day {day}", (f"s{day}",), 10.0, kept.read_started())
    assert len(kept) == 2 and kept.get((EVENT, date(2026, 5, 1), None), 10.0) is None
    kept.changed(EVENT, "s1")  # its slot index went with it
    assert kept.get((EVENT, date(2026, 5, 3), None), 10.0) == "day 3"


class FakeStore:
    """The capacity store as availability reads it: a day's counters, after a pause in which other
    requests arrive; announcements pushed by the test."""

    def __init__(self) -> None:
        self.reads = 0
        self.remaining = 3
        self.proceed = asyncio.Event()
        self.announcements: asyncio.Queue[CounterChange | None] = asyncio.Queue()

    async def days_counts(self, event_id, days, zone):
        from availability.adapters.counters import DayCounts
        from common.contracts import EventData
        from common.counters import KnownEvent

        self.reads += 1
        await self.proceed.wait()
        if event_id != EVENT:
            return None
        data = EventData.model_validate(
            {
                "id": str(EVENT), "name": "Clinic", "timezone": "UTC", "start_date": "2030-05-06",
                "end_date": "2030-05-07", "opens_at": "11:00", "closes_at": "12:00", "slot_minutes": 60, "blackouts": [],
            }
        )  # fmt: skip
        schedule = data.schedule()
        counted = []
        for day in days:
            slots = schedule.slots_on_local_day(day, schedule.zone)
            counted.append(DayCounts(KnownEvent(1, data, schedule), slots, [3] * len(slots), [self.remaining] * len(slots)))
        return counted

    async def is_built(self) -> bool:
        return True

    async def changes(self):
        while True:
            yield await self.announcements.get()


async def test_requests_that_come_while_a_day_is_read_take_its_answer():
    store, now = FakeStore(), [0.0]
    availability = Availability(store, MAX_AGE, EDGE_KEEP, StreamSettings(0.1, 1.0, 15.0), clock=lambda: now[0])
    following_task = asyncio.create_task(availability.follow_changes())
    store.announcements.put_nowait(None)  # subscribed
    await asyncio.sleep(0)
    requests = [asyncio.create_task(availability.day(EVENT, MONDAY[1], None)) for _ in range(20)]
    await asyncio.sleep(0)
    store.proceed.set()
    answers = await asyncio.gather(*requests)
    assert store.reads == 1 and len({a.etag for a in answers}) == 1
    assert b'"remaining":3' in answers[0].body

    assert (await availability.day(EVENT, MONDAY[1], None)) is answers[0] and store.reads == 1  # kept
    store.remaining = 2
    slot = next(iter(availability.kept._by_slot))[1]
    store.announcements.put_nowait(CounterChange(EVENT, slot))
    await asyncio.sleep(0.01)
    changed = await availability.day(EVENT, MONDAY[1], None)
    assert store.reads == 2 and b'"remaining":2' in changed.body and changed.etag != answers[0].etag

    now[0] += MAX_AGE - EDGE_KEEP - 0.001  # nothing announced, and within the service's part of the bound
    await availability.day(EVENT, MONDAY[1], None)
    assert store.reads == 2
    now[0] += 0.001  # the rest of the bound is the entry's, which may keep what it is given for that long
    await availability.day(EVENT, MONDAY[1], None)
    assert store.reads == 3

    waiting = [asyncio.create_task(availability.day(OTHER, MONDAY[1], None)) for _ in range(3)]
    for outcome in await asyncio.gather(*waiting, return_exceptions=True):  # each gets the 404 itself
        assert isinstance(outcome, Problem) and outcome.status == 404
    following_task.cancel()
