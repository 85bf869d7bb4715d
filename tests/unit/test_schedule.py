"""Slot arithmetic over random events, zones and days, DST days included."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from common.schedule import DailyWindow, Schedule, Window

ZONES = ["UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Auckland"]
# Days around the 2026 DST changes of those zones, so the random days often land on one.
DAYS = st.sampled_from(
    [
        date(2026, 3, 8),
        date(2026, 3, 29),
        date(2026, 4, 5),
        date(2026, 9, 27),
        date(2026, 10, 4),
        date(2026, 10, 25),
        date(2026, 11, 1),
        date(2026, 6, 15),
    ]
).flatmap(lambda d: st.integers(-1, 1).map(lambda k: d + timedelta(days=k)))


@st.composite
def schedules(draw) -> Schedule:
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    slot_minutes = draw(st.sampled_from([15, 20, 30, 45, 60, 90]))
    opens = draw(st.integers(0, 20 * 60))
    closes = draw(st.integers(opens + slot_minutes, 24 * 60 - 1))
    start = draw(DAYS)
    return Schedule(
        zone=zone,
        start_date=start,
        end_date=start + timedelta(days=draw(st.integers(0, 3))),
        opens_at=time(opens // 60, opens % 60),
        closes_at=time(closes // 60, closes % 60),
        slot_minutes=slot_minutes,
    )


def all_slots(schedule: Schedule):
    return [s for d in schedule.event_days() for s in schedule.slots_on_event_day(d)]


@settings(max_examples=300, deadline=None)
@given(schedules())
def test_slots_tile_each_days_opening_hours_in_absolute_time(schedule: Schedule):
    for day in schedule.event_days():
        slots = schedule.slots_on_event_day(day)
        opens = datetime.combine(day, schedule.opens_at, schedule.zone).astimezone(UTC)
        closes = datetime.combine(day, schedule.closes_at, schedule.zone).astimezone(UTC)
        # Hours that fall in a spring-forward gap can close "before" they open: no slots then.
        assert len(slots) == max(0, (closes - opens) // schedule.slot_length)
        assert all(s.end - s.start == schedule.slot_length for s in slots)
        assert all(a.end == b.start for a, b in zip(slots, slots[1:], strict=False))
        if slots:
            assert slots[0].start == opens and slots[-1].end <= closes


@settings(max_examples=300, deadline=None)
@given(schedules(), st.sampled_from(ZONES))
def test_a_clients_local_days_partition_the_events_slots(schedule: Schedule, client_zone: str):
    zone = ZoneInfo(client_zone)
    first = schedule.start_date - timedelta(days=2)
    seen = []
    for k in range((schedule.end_date - schedule.start_date).days + 5):
        day = first + timedelta(days=k)
        window_start = datetime.combine(day, time(0), zone)
        window_end = datetime.combine(day + timedelta(days=1), time(0), zone)
        slots = schedule.slots_on_local_day(day, zone)
        assert all(window_start <= s.start < window_end for s in slots)
        assert list(slots) == sorted(slots)
        seen.extend(slots)
    assert seen == all_slots(schedule)  # every slot exactly once, in order


@settings(max_examples=200, deadline=None)
@given(schedules())
def test_a_slot_is_found_by_its_start_and_only_by_it(schedule: Schedule):
    for slot in all_slots(schedule):
        assert schedule.slot_starting_at(slot.start) == slot
        assert schedule.slot_starting_at(slot.start.astimezone(schedule.zone)) == slot
        assert schedule.slot_starting_at(slot.start + timedelta(minutes=1)) is None


@settings(max_examples=200, deadline=None)
@given(schedules(), st.integers(0, 23 * 60), st.integers(1, 180))
def test_a_daily_blackout_blocks_exactly_the_slots_it_overlaps(schedule: Schedule, start_minute: int, length: int):
    end_minute = min(start_minute + length, 24 * 60 - 1)
    window = DailyWindow(time(start_minute // 60, start_minute % 60), time(end_minute // 60, end_minute % 60))
    blocked = Schedule(**{**schedule.__dict__, "blackouts": (window,)})
    for slot in all_slots(blocked):
        local_day = slot.start.astimezone(schedule.zone).date()
        w_start = datetime.combine(local_day, window.start_time, schedule.zone)
        w_end = datetime.combine(local_day, window.end_time, schedule.zone)
        assert blocked.is_blocked(slot) == (slot.start < w_end and w_start < slot.end)


def test_spring_forward_day_in_new_york_has_one_hour_fewer_of_slots():
    zone = ZoneInfo("America/New_York")
    schedule = Schedule(zone, date(2026, 3, 7), date(2026, 3, 9), time(0), time(23, 30), 30)
    counts = [len(schedule.slots_on_event_day(date(2026, 3, d))) for d in (7, 8, 9)]
    assert counts == [47, 45, 47]
    # The local day of the change has 23 hours: a client there sees the day's slots, no more.
    assert len(schedule.slots_on_local_day(date(2026, 3, 8), zone)) == 45


def test_fall_back_day_in_london_has_one_hour_more_and_its_repeated_hour_is_kept_apart():
    zone = ZoneInfo("Europe/London")
    schedule = Schedule(zone, date(2026, 10, 25), date(2026, 10, 25), time(0, 30), time(3), 30)
    slots = schedule.slots_on_event_day(date(2026, 10, 25))
    assert len(slots) == 7  # 00:30-03:00 local spans 3.5 hours on the day clocks go back
    assert len({s.start for s in slots}) == 7


def test_slots_in_the_repeated_hour_of_a_fall_back_day_are_found_by_their_local_start():
    zone = ZoneInfo("America/New_York")
    schedule = Schedule(zone, date(2026, 11, 1), date(2026, 11, 1), time(0), time(1, 15), 15)
    slots = schedule.slots_on_event_day(date(2026, 11, 1))
    assert len(slots) == 5  # 00:00-01:15 EDT; the second 01:00 (EST) comes after closing
    for slot in slots:
        assert schedule.slot_starting_at(slot.start.astimezone(zone)) == slot


def test_half_hour_offset_zone_days_span_two_utc_dates():
    schedule = Schedule(ZoneInfo("UTC"), date(2026, 6, 1), date(2026, 6, 2), time(0), time(23, 0), 60)
    kolkata = schedule.slots_on_local_day(date(2026, 6, 2), ZoneInfo("Asia/Kolkata"))
    # Kolkata's 2 June is 18:30 UTC on 1 June to 18:30 UTC on 2 June.
    assert kolkata[0].start == datetime(2026, 6, 1, 19, tzinfo=UTC)
    assert kolkata[-1].start == datetime(2026, 6, 2, 18, tzinfo=UTC)
    assert len(kolkata) == 23
    assert {s.start.date() for s in kolkata} == {date(2026, 6, 1), date(2026, 6, 2)}


def test_one_off_blackout_blocks_overlapping_slots_only():
    zone = ZoneInfo("Europe/Paris")
    window = Window(datetime(2026, 5, 4, 10, 15, tzinfo=zone), datetime(2026, 5, 4, 11, tzinfo=zone))
    schedule = Schedule(zone, date(2026, 5, 4), date(2026, 5, 4), time(9), time(12), 30, (window,))
    blocked = [
        s.start.astimezone(zone).strftime("%H:%M")
        for s in schedule.slots_on_event_day(date(2026, 5, 4))
        if schedule.is_blocked(s)
    ]
    assert blocked == ["10:00", "10:30"]
