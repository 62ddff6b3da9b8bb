"""NSE trading calendar: regular session 09:15-15:30 Asia/Kolkata, Monday to Friday.

Holidays are data, not code: the caller (config) passes the list. Special sessions
(e.g. Muhurat trading) are out of scope.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from backend.domain.errors import ValidationFailed

IST = ZoneInfo("Asia/Kolkata")
SESSION_OPEN = time(9, 15)
SESSION_CLOSE = time(15, 30)
SESSION_MINUTES = 375  # 09:15 -> 15:30

# Guard for loops that search for the next trading day: a holiday list that closes the
# market for this long is a configuration error, not a calendar.
_MAX_SCAN_DAYS = 60


@dataclass(frozen=True, slots=True)
class MarketStatus:
    is_open: bool
    next_open: datetime  # next session open strictly after now when open, else the coming open
    next_close: datetime  # close of the current session when open, else of the next session
    reason: str  # "open", "pre_open", "after_close", "weekend" or "holiday"


class NseCalendar:
    """Trading days and session times; all returned datetimes are aware (Asia/Kolkata)."""

    def __init__(self, holidays: Iterable[date | str] = ()):
        self.holidays: frozenset[date] = frozenset(_as_date(h) for h in holidays)

    def is_trading_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.holidays

    def session_open(self, day: date) -> datetime:
        return datetime.combine(day, SESSION_OPEN, tzinfo=IST)

    def session_close(self, day: date) -> datetime:
        return datetime.combine(day, SESSION_CLOSE, tzinfo=IST)

    def next_trading_day(self, day: date, include: bool = False) -> date:
        d = day if include else day + timedelta(days=1)
        for _ in range(_MAX_SCAN_DAYS):
            if self.is_trading_day(d):
                return d
            d += timedelta(days=1)
        raise ValidationFailed(f"no trading day within {_MAX_SCAN_DAYS} days after {day}")

    def previous_trading_day(self, day: date, include: bool = False) -> date:
        d = day if include else day - timedelta(days=1)
        for _ in range(_MAX_SCAN_DAYS):
            if self.is_trading_day(d):
                return d
            d -= timedelta(days=1)
        raise ValidationFailed(f"no trading day within {_MAX_SCAN_DAYS} days before {day}")

    def trading_days(self, start: date, end: date) -> list[date]:
        """Trading days in [start, end] inclusive."""
        out: list[date] = []
        d = start
        while d <= end:
            if self.is_trading_day(d):
                out.append(d)
            d += timedelta(days=1)
        return out

    def market_status(self, now: datetime) -> MarketStatus:
        if now.tzinfo is None:
            raise ValidationFailed("now must be timezone-aware", details={"field": "now"})
        local = now.astimezone(IST)
        today = local.date()
        if self.is_trading_day(today):
            open_, close = self.session_open(today), self.session_close(today)
            if open_ <= local < close:
                nxt = self.next_trading_day(today)
                return MarketStatus(True, self.session_open(nxt), close, "open")
            if local < open_:
                return MarketStatus(False, open_, close, "pre_open")
            reason = "after_close"
        else:
            reason = "holiday" if today.weekday() < 5 else "weekend"
        nxt = self.next_trading_day(today)
        return MarketStatus(False, self.session_open(nxt), self.session_close(nxt), reason)

    def is_open(self, now: datetime) -> bool:
        return self.market_status(now).is_open


def market_status(now: datetime, holidays: Iterable[date | str] = ()) -> MarketStatus:
    """Convenience wrapper around :meth:`NseCalendar.market_status`."""
    return NseCalendar(holidays).market_status(now)


def session_close(day: date) -> datetime:
    """15:30 IST of ``day`` (aware)."""
    return datetime.combine(day, SESSION_CLOSE, tzinfo=IST)


def _as_date(value: date | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationFailed(f"invalid holiday date {value!r} (expected YYYY-MM-DD)") from None
