"""Reconcile repairs drift that lasts, not a booking that happened to be in flight while it looked."""

from common.capacity import lasting_differences


def look(redis_remaining: str, record_remaining: str, other: str = "3") -> tuple[dict, dict]:
    live = {"remaining": {"slot-a": redis_remaining, "slot-b": other}}
    built = {"remaining": {"slot-a": record_remaining, "slot-b": other}}
    return live, built


def test_a_difference_that_stays_put_is_drift():
    assert lasting_differences(look("2", "3"), look("2", "3")) == {"remaining": ["slot-a"]}


def test_a_slot_that_moved_between_the_looks_is_a_booking_in_flight():
    # First look: Redis has taken the unit, the record has not committed yet.
    # Second look: the next booking in the same slot is in the same place.
    assert lasting_differences(look("2", "3"), look("1", "2")) == {}


def test_a_slot_where_only_one_side_moved_is_still_in_flight():
    # Redis took another unit between the looks; the record had not caught up either time.
    assert lasting_differences(look("2", "3"), look("1", "3")) == {}
    # The record committed another booking between the looks; Redis still disagrees.
    assert lasting_differences(look("2", "3"), look("2", "4")) == {}


def test_a_difference_seen_only_once_is_not_drift():
    assert lasting_differences(look("3", "3"), look("2", "3")) == {}
    assert lasting_differences(look("2", "3"), look("3", "3")) == {}


def test_only_the_lasting_fields_are_reported():
    first = ({"remaining": {"a": "1", "b": "1"}}, {"remaining": {"a": "2", "b": "2"}})
    second = ({"remaining": {"a": "1", "b": "0"}}, {"remaining": {"a": "2", "b": "1"}})
    assert lasting_differences(first, second) == {"remaining": ["a"]}
