from datetime import UTC, date, datetime

import pytest

from backend.domain.errors import ValidationFailed
from backend.domain.market.calendar import IST, NseCalendar, market_status, session_close

HOLIDAYS = ["2025-10-21", "2025-11-05", "2025-12-25"]


def ist(*a):
    return datetime(*a, tzinfo=IST)


def test_open_during_session():
    s = market_status(ist(2025, 11, 20, 11, 0), HOLIDAYS)  # Thursday
    assert s.is_open and s.reason == "open"
    assert s.next_close == ist(2025, 11, 20, 15, 30)
    assert s.next_open == ist(2025, 11, 21, 9, 15)


def test_boundaries_open_inclusive_close_exclusive():
    cal = NseCalendar(HOLIDAYS)
    assert cal.is_open(ist(2025, 11, 20, 9, 15))
    assert not cal.is_open(ist(2025, 11, 20, 9, 14, 59))
    assert not cal.is_open(ist(2025, 11, 20, 15, 30))
    assert cal.market_status(ist(2025, 11, 20, 8, 0)).reason == "pre_open"


def test_after_close_friday_points_to_monday():
    s = market_status(ist(2025, 11, 21, 16, 0), HOLIDAYS)
    assert not s.is_open and s.reason == "after_close"
    assert s.next_open == ist(2025, 11, 24, 9, 15)
    assert s.next_close == ist(2025, 11, 24, 15, 30)


def test_weekend_and_holiday():
    assert market_status(ist(2025, 11, 22, 11, 0), HOLIDAYS).reason == "weekend"
    h = market_status(ist(2025, 12, 25, 11, 0), HOLIDAYS)
    assert h.reason == "holiday" and h.next_open == ist(2025, 12, 26, 9, 15)
    # Without the holiday list Christmas is an ordinary Thursday.
    assert market_status(ist(2025, 12, 25, 11, 0)).is_open


def test_utc_input_is_converted():
    # 04:00 UTC == 09:30 IST
    assert market_status(datetime(2025, 11, 20, 4, 0, tzinfo=UTC)).is_open


def test_session_close_and_trading_days():
    assert session_close(date(2025, 11, 20)) == ist(2025, 11, 20, 15, 30)
    cal = NseCalendar(HOLIDAYS)
    days = cal.trading_days(date(2025, 11, 3), date(2025, 11, 9))
    assert days == [date(2025, 11, 3), date(2025, 11, 4), date(2025, 11, 6), date(2025, 11, 7)]
    assert cal.previous_trading_day(date(2025, 11, 6)) == date(2025, 11, 4)


def test_naive_now_and_bad_holiday_rejected():
    with pytest.raises(ValidationFailed):
        market_status(datetime(2025, 11, 20, 11, 0))
    with pytest.raises(ValidationFailed):
        NseCalendar(["25/12/2025"])
