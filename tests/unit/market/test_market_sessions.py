"""The exchange calendar built from the shipped data files, at hand-picked dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest

from backend.domain.errors import ValidationFailed
from backend.domain.market.calendar import IST, build_calendar, parse_holiday_file, parse_sessions
from backend.domain.market.instruments import option_expiries
from backend.domain.market.simulated import SimulatedProvider

ROOT = Path(__file__).resolve().parents[3] / "config" / "calendars"


def _calendar():
    import yaml

    sessions = parse_sessions(yaml.safe_load((ROOT / "NSE-sessions.yaml").read_text()))
    holidays = []
    for year in (2025, 2026, 2027):
        holidays += parse_holiday_file(yaml.safe_load((ROOT / f"NSE-{year}.yaml").read_text())).holidays
    return build_calendar(sessions, holidays)


def ist(*a) -> datetime:
    return datetime(*a, tzinfo=IST)


def test_2026_list_is_complete_with_the_election_holiday():
    cal = _calendar()
    days = sorted(d for d in cal.holidays if d.year == 2026)
    assert len(days) == 16 and date(2026, 1, 15) in days
    assert not cal.is_trading_day(date(2026, 1, 15))  # Thursday, Maharashtra municipal elections
    assert cal.is_trading_day(date(2026, 1, 16))


def test_fo_close_moves_to_1540_on_3_august_2026_equity_stays_1530():
    cal = _calendar()
    assert cal.session_close(date(2026, 7, 31), "NSE_FO") == ist(2026, 7, 31, 15, 30)
    assert cal.session_close(date(2026, 8, 3), "NSE_FO") == ist(2026, 8, 3, 15, 40)
    assert cal.session_close(date(2026, 8, 3), "NSE_EQ") == ist(2026, 8, 3, 15, 30)
    assert cal.session_close(date(2026, 8, 3), "NSE_INDEX") == ist(2026, 8, 3, 15, 30)  # follows cash
    assert cal.is_open(ist(2026, 8, 3, 15, 35), "NSE_FO") and not cal.is_open(
        ist(2026, 8, 3, 15, 35), "NSE_EQ"
    )


def test_next_open_over_a_weekend_and_a_holiday():
    cal = _calendar()
    # Thursday 24 Dec 2026 after the close: Friday is Christmas, so Monday 28th 09:15 IST
    st = cal.market_status(ist(2026, 12, 24, 20, 0), "NSE_EQ")
    assert st.reason == "after_close" and st.next_open == ist(2026, 12, 28, 9, 15)
    assert st.next_open.astimezone(UTC) == datetime(2026, 12, 28, 3, 45, tzinfo=UTC)
    assert cal.market_status(ist(2026, 12, 25, 10, 0)).reason == "holiday"


def test_expiry_on_a_holiday_moves_to_the_previous_trading_day():
    cal = _calendar()
    # NIFTY's January 2027 monthly (last Tuesday) falls on Republic Day: Monday 25 Jan 2027
    assert cal.expiry_day(date(2027, 1, 26)) == date(2027, 1, 25)
    expiries = option_expiries("NIFTY", date(2027, 1, 1), cal)
    assert date(2027, 1, 25) in expiries and date(2027, 1, 26) not in expiries
    # 3 Mar 2026 (Holi) is a Tuesday: that weekly expiry is Monday 2 Mar
    assert date(2026, 3, 2) in option_expiries("NIFTY", date(2026, 2, 27), cal)


def test_segment_holiday_closes_only_that_segment():
    from backend.domain.market.calendar import Holiday

    cal = build_calendar({}, [Holiday(date(2026, 12, 3), "fo only", ("NSE_FO",))])
    assert cal.is_trading_day(date(2026, 12, 3), "NSE_EQ")
    assert not cal.is_trading_day(date(2026, 12, 3), "NSE_FO")


def test_bad_files_name_the_entry():
    with pytest.raises(ValidationFailed, match=r"holidays.1: 2025-12-25 is not in 2026"):
        parse_holiday_file(
            {"exchange": "NSE", "year": 2026, "holidays": [{"date": "2026-01-26"}, {"date": "2025-12-25"}]}
        )
    with pytest.raises(ValidationFailed, match="listed twice"):
        parse_holiday_file({"exchange": "NSE", "year": 2026, "holidays": [{"date": "2026-01-26"}] * 2})
    with pytest.raises(ValidationFailed, match="close must be after open"):
        parse_sessions({"segments": {"NSE_EQ": [{"open": "15:30", "close": "09:15"}]}})
    assert parse_sessions({"segments": {"NSE_EQ": [{"open": 555, "close": 930}]}})["NSE_EQ"][0].open == time(
        9, 15
    )


def test_simulated_market_moves_after_hours_only_with_always_open():
    now = ist(2026, 12, 3, 20, 0)
    still = SimulatedProvider(seed=7, clock=lambda: now, strikes_each_side=1)
    moving = SimulatedProvider(seed=7, clock=lambda: now, strikes_each_side=1, off_session_moves=True)
    ins = still.instruments.by_symbol("RELIANCE")
    close = still._spot(ins, ist(2026, 12, 3, 15, 30))
    assert still._spot(ins, ist(2026, 12, 3, 20, 0)) == close == still._spot(ins, ist(2026, 12, 3, 22, 0))
    evening = [moving._spot(ins, ist(2026, 12, 3, h, 0)) for h in (18, 20, 22)]
    assert len(set(evening)) == 3 and all(p != close for p in evening)
    # the evening path starts at the close and meets the next session's open
    assert moving._spot(ins, ist(2026, 12, 3, 15, 30)) == pytest.approx(close)
    assert moving._spot(ins, ist(2026, 12, 4, 9, 14, 59, 999999)) == pytest.approx(
        moving._spot(ins, ist(2026, 12, 4, 9, 15)), rel=1e-4
    )
