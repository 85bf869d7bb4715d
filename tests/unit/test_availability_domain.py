from datetime import date, time
from zoneinfo import ZoneInfo

from availability.domain import DayFrame, Reason, SlotStatus, day_frame, day_view
from common.schedule import DailyWindow, Schedule

SCHEDULE = Schedule(
    ZoneInfo("UTC"), date(2026, 5, 4), date(2026, 5, 4), time(11), time(14), 60, (DailyWindow(time(12), time(13)),)
)
DAY = date(2026, 5, 4)
FRAME = day_frame(SCHEDULE, DAY, ZoneInfo("UTC"))  # 11:00, 12:00 (lunch), 13:00


def statuses(view):
    return [(v.status, v.remaining) for v in view.slots]


def test_each_slot_is_available_full_or_blocked():
    view = day_view(FRAME, [2, 2, 1], [1, 2, 0])
    assert statuses(view) == [(SlotStatus.AVAILABLE, 1), (SlotStatus.BLOCKED, 0), (SlotStatus.FULL, 0)]
    assert view.reason is None


def test_the_reason_says_why_nothing_is_available():
    assert day_view(DayFrame((), ()), [], []).reason is Reason.NO_EVENT
    assert day_view(FRAME, [0, 0, 0], [0, 0, 0]).reason is Reason.NO_SHIFTS
    assert day_view(FRAME, [1, 0, 1], [0, 0, 0]).reason is Reason.FULLY_BOOKED
    assert day_view(FRAME, [0, 3, 0], [0, 3, 0]).reason is Reason.BLACKOUT  # shifts only over lunch
    lunch_only = Schedule(**{**SCHEDULE.__dict__, "blackouts": (DailyWindow(time(11), time(14)),)})
    assert day_view(day_frame(lunch_only, DAY, ZoneInfo("UTC")), [1, 1, 1], [1, 1, 1]).reason is Reason.BLACKOUT


def test_a_slot_over_committed_by_a_shrunk_shift_shows_zero_remaining():
    assert statuses(day_view(FRAME, [1, 0, 0], [-1, 0, 0]))[0] == (SlotStatus.FULL, 0)
