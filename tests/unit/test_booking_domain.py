import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from booking.domain import Coverage, beyond_capacity

NINE = datetime(2030, 3, 4, 9, tzinfo=UTC)
HALF_HOUR = timedelta(minutes=30)
ADA, BOB = uuid.uuid4(), uuid.uuid4()


@dataclass
class Booked:
    slot_start: datetime
    professional_id: uuid.UUID
    unit: int
    id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def slot_end(self) -> datetime:
        return self.slot_start + HALF_HOUR


def booked(slot: int, unit: int, professional: uuid.UUID = ADA) -> Booked:
    return Booked(NINE + slot * HALF_HOUR, professional, unit)


def always(start, end) -> bool:
    return True


def shift(capacity: int, slots: int = 2, professional: uuid.UUID = ADA, first: int = 0) -> Coverage:
    return Coverage(professional, NINE + first * HALF_HOUR, NINE + (first + slots) * HALF_HOUR, capacity)


def test_nothing_is_beyond_while_every_unit_is_within_its_professionals_capacity():
    bookings = [booked(0, 1), booked(0, 2), booked(1, 1), booked(0, 1, BOB)]
    assert beyond_capacity(bookings, [shift(2), shift(1, professional=BOB)], always) == []


def test_a_unit_above_the_capacity_is_beyond_even_when_the_count_fits():
    # Capacity 2 with units 1 and 3 held: the count fits, but a booking committing on unit 2 would
    # make three. The record's rule is per unit, which with unique units bounds the count.
    first, third = booked(0, 1), booked(0, 3)
    assert [b.booking for b in beyond_capacity([first, third], [shift(2)], always)] == [third]


def test_a_cancelled_or_shorter_shift_leaves_every_booking_it_no_longer_covers_beyond():
    early, late, other = booked(0, 1), booked(3, 1), booked(3, 1, BOB)
    shifts = [shift(1), shift(1, slots=4, professional=BOB)]
    assert [b.booking for b in beyond_capacity([early, late, other], shifts, always)] == [late]
    assert [b.booking for b in beyond_capacity([early, late], [], always)] == [early, late]
    assert {b.capacity for b in beyond_capacity([early, late], [], always)} == {0}


def test_capacities_of_a_professionals_shifts_covering_the_slot_add_up_and_a_partial_one_does_not_count():
    # Shifts of one professional never overlap in the record, but the rule does not rely on it.
    bookings = [booked(0, 1), booked(0, 2)]
    assert beyond_capacity(bookings, [shift(1), shift(1)], always) == []
    partial = Coverage(ADA, NINE + HALF_HOUR / 2, NINE + 2 * HALF_HOUR, 5)
    assert len(beyond_capacity(bookings, [partial], always)) == 2


def test_a_booking_in_a_slot_that_is_no_longer_bookable_is_beyond_and_says_so():
    lunch = booked(1, 1)
    found = beyond_capacity([booked(0, 1), lunch], [shift(2)], lambda start, end: start != lunch.slot_start)
    assert [(b.booking, b.blocked) for b in found] == [(lunch, True)]
