"""The shifts service's rules for events and shifts, without a database."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from common.errors import Problem
from shifts.domain import MAX_SHIFT_CAPACITY, check_event, check_shift, check_window, shift_fits
from tests.factories import event_data

LISBON = ZoneInfo("Europe/Lisbon")


def code_of(check, *args) -> str:
    with pytest.raises(Problem) as refused:
        check(*args)
    assert refused.value.status == 422
    return refused.value.code


def test_an_event_must_end_after_it_starts_and_hold_at_least_one_slot_a_day():
    day = date(2030, 5, 6)
    check_event(day, day, time(9), time(9, 30), 30)  # one slot: fine
    assert code_of(check_event, day, day - timedelta(days=1), time(9), time(17), 30) == "invalid_event"
    assert code_of(check_event, day, day, time(17), time(9), 30) == "invalid_event"
    assert code_of(check_event, day, day, time(9), time(9, 20), 30) == "invalid_event"


def test_a_blackout_must_end_after_it_starts():
    check_window(time(12), time(13))
    assert code_of(check_window, time(13), time(12)) == "invalid_blackout"


def schedule():
    event = event_data(zone="Europe/Lisbon", start=date(2030, 5, 6), days=2, opens=time(9), closes=time(12))
    return event.schedule()


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2030, 5, 6 + day, hour, minute, tzinfo=LISBON)


def test_a_shift_covers_whole_slots_of_one_day_within_the_hours():
    s = schedule()
    check_shift(s, at(0, 9), at(0, 12), 1)
    assert shift_fits(s, at(1, 10, 30), at(1, 11))
    assert not shift_fits(s, at(0, 9, 10), at(0, 10))  # not on a slot boundary
    assert not shift_fits(s, at(0, 11), at(0, 13))  # past the closing hour
    assert not shift_fits(s, at(0, 11), at(1, 10))  # across two days
    assert code_of(check_shift, s, at(0, 9, 10), at(0, 10), 1) == "not_on_slot_boundaries"


def test_a_shift_is_refused_outside_the_event_or_with_an_impossible_capacity():
    s = schedule()
    assert code_of(check_shift, s, at(2, 9), at(2, 10), 1) == "outside_event"
    assert code_of(check_shift, s, at(0, 10), at(0, 9), 1) == "invalid_shift"
    assert code_of(check_shift, s, at(0, 9), at(0, 10), 0) == "invalid_shift"
    assert code_of(check_shift, s, at(0, 9), at(0, 10), MAX_SHIFT_CAPACITY + 1) == "invalid_shift"


def test_the_same_instant_written_in_another_zone_still_fits():
    s = schedule()
    utc = ZoneInfo("UTC")
    assert shift_fits(s, at(0, 9).astimezone(utc), at(0, 10).astimezone(utc))
