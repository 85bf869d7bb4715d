import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from booking.domain import Coverage, bookings_beyond_coverage

NINE = datetime(2030, 3, 4, 9, tzinfo=UTC)
HALF_HOUR = timedelta(minutes=30)


@dataclass
class Booked:
    slot_start: datetime
    created_at: datetime
    id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def slot_end(self) -> datetime:
        return self.slot_start + HALF_HOUR


def booked(slot: int, order: int) -> Booked:
    return Booked(NINE + slot * HALF_HOUR, NINE - timedelta(days=1) + order * timedelta(seconds=1))


def test_nothing_moves_while_the_shifts_still_cover_every_booking():
    bookings = [booked(0, 1), booked(0, 2), booked(1, 3)]
    assert bookings_beyond_coverage(bookings, [Coverage(NINE, NINE + 2 * HALF_HOUR, 2)]) == []


def test_a_smaller_capacity_moves_the_newest_bookings_of_each_slot():
    first, second, third, elsewhere = booked(0, 1), booked(0, 2), booked(0, 3), booked(1, 4)
    shrunk = [Coverage(NINE, NINE + 2 * HALF_HOUR, 1)]
    assert bookings_beyond_coverage([third, first, elsewhere, second], shrunk) == [second, third]


def test_a_shorter_or_cancelled_shift_moves_every_booking_it_no_longer_covers():
    early, late = booked(0, 1), booked(3, 2)
    assert bookings_beyond_coverage([early, late], [Coverage(NINE, NINE + 2 * HALF_HOUR, 1)]) == [late]
    assert bookings_beyond_coverage([early, late], []) == [early, late]
