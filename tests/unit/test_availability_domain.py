from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from availability.domain import DayFrame, Reason, SlotStatus, day_frame, day_view
from common.contracts import BookingRules, RuleBreach
from common.schedule import DailyWindow, Schedule

SCHEDULE = Schedule(
    ZoneInfo("UTC"), date(2026, 5, 4), date(2026, 5, 4), time(11), time(14), 60, (DailyWindow(time(12), time(13)),)
)
DAY = date(2026, 5, 4)
FRAME = day_frame(SCHEDULE, DAY, ZoneInfo("UTC"))  # 11:00, 12:00 (lunch), 13:00
NO_RULES = BookingRules()
WEEK_BEFORE = datetime(2026, 4, 27, 9, tzinfo=UTC)


def day_view_before(frame, capacity, remaining, rules=NO_RULES, now=WEEK_BEFORE):
    return day_view(frame, capacity, remaining, rules, now)


def statuses(view):
    return [(v.status, v.remaining) for v in view.slots]


def test_each_slot_is_available_full_or_blocked():
    view = day_view_before(FRAME, [2, 2, 1], [1, 2, 0])
    assert statuses(view) == [(SlotStatus.AVAILABLE, 1), (SlotStatus.BLOCKED, 0), (SlotStatus.FULL, 0)]
    assert view.reason is None


def test_the_reason_says_why_nothing_is_available():
    assert day_view_before(DayFrame((), ()), [], []).reason is Reason.NO_EVENT
    assert day_view_before(FRAME, [0, 0, 0], [0, 0, 0]).reason is Reason.NO_SHIFTS
    assert day_view_before(FRAME, [1, 0, 1], [0, 0, 0]).reason is Reason.FULLY_BOOKED
    assert day_view_before(FRAME, [0, 3, 0], [0, 3, 0]).reason is Reason.BLACKOUT  # shifts only over lunch
    lunch_only = Schedule(**{**SCHEDULE.__dict__, "blackouts": (DailyWindow(time(11), time(14)),)})
    assert day_view_before(day_frame(lunch_only, DAY, ZoneInfo("UTC")), [1, 1, 1], [1, 1, 1]).reason is Reason.BLACKOUT


def test_a_slot_over_committed_by_a_shrunk_shift_shows_zero_remaining():
    assert statuses(day_view_before(FRAME, [1, 0, 0], [-1, 0, 0]))[0] == (SlotStatus.FULL, 0)


def test_slots_the_booking_rules_rule_out_now_are_blocked_and_the_day_says_which_rule():
    notice = BookingRules(min_notice_minutes=120)
    at_ten = datetime(2026, 5, 4, 10, tzinfo=UTC)  # 11:00 is an hour away, 13:00 three
    view = day_view(FRAME, [2, 2, 1], [1, 2, 1], notice, at_ten)
    assert statuses(view) == [(SlotStatus.BLOCKED, 0), (SlotStatus.BLOCKED, 0), (SlotStatus.AVAILABLE, 1)]
    assert [v.breach for v in view.slots] == [RuleBreach.TOO_SOON, None, None]
    assert day_view(FRAME, [2, 2, 1], [1, 2, 0], notice, at_ten).reason is Reason.FULLY_BOOKED  # 13:00 could be, but is full
    assert day_view(FRAME, [2, 2, 1], [1, 2, 1], notice, datetime(2026, 5, 4, 11, 30, tzinfo=UTC)).reason is Reason.TOO_SOON
    assert (
        day_view(FRAME, [2, 2, 1], [1, 2, 1], NO_RULES, datetime(2026, 5, 4, 14, tzinfo=UTC)).reason is Reason.TOO_SOON
    )  # begun

    horizon = BookingRules(horizon_days=7)
    view = day_view(FRAME, [2, 2, 1], [1, 2, 1], horizon, datetime(2026, 4, 27, 12, 30, tzinfo=UTC))
    assert [v.breach for v in view.slots] == [None, None, RuleBreach.TOO_FAR]  # 11:00 is 6 d 22.5 h ahead, 13:00 7 d 0.5 h
    assert day_view(FRAME, [2, 2, 1], [1, 2, 1], horizon, datetime(2026, 4, 20, tzinfo=UTC)).reason is Reason.TOO_FAR
