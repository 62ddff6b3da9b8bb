"""Exchange calendar per segment: session hours (dated, so a change of hours takes effect on its
date) and holidays, all from data (``config/calendars/*.yaml`` and the ``market_holidays`` table).

Without session data the calendar keeps NSE's long-standing regular session, 09:15-15:30
Asia/Kolkata, Monday to Friday, for every segment (what unit tests and old callers expect).
Special sessions (e.g. Muhurat trading) are out of scope.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from backend.domain.errors import ValidationFailed

IST = ZoneInfo("Asia/Kolkata")
SESSION_OPEN = time(9, 15)
SESSION_CLOSE = time(15, 30)
SESSION_MINUTES = 375  # 09:15 -> 15:30, the equity session the simulator draws
EQUITY = "NSE_EQ"
DERIVATIVES = "NSE_FO"
INDEX = "NSE_INDEX"
# An index is not traded; its quotes follow the cash market's session.
_SEGMENT_FALLBACK = {INDEX: EQUITY}

# Guard for loops that search for the next trading day: a holiday list that closes the
# market for this long is a configuration error, not a calendar.
_MAX_SCAN_DAYS = 60


@dataclass(frozen=True, slots=True)
class MarketStatus:
    is_open: bool
    next_open: datetime  # next session open strictly after now when open, else the coming open
    next_close: datetime  # close of the current session when open, else of the next session
    reason: str  # "open", "pre_open", "after_close", "weekend" or "holiday"


@dataclass(frozen=True, slots=True)
class SessionHours:
    """A segment's regular session from ``effective_from`` on (until a later rule replaces it)."""

    effective_from: date
    open: time
    close: time
    source: str = ""


@dataclass(frozen=True, slots=True)
class Holiday:
    day: date
    name: str = ""
    segments: tuple[str, ...] = ()  # empty: every segment of the exchange


@dataclass(frozen=True, slots=True)
class HolidayFile:
    exchange: str
    year: int
    holidays: tuple[Holiday, ...]
    source: str = ""
    status: str = "published"  # or "provisional": not yet the exchange's circular
    segments: tuple[str, ...] = field(default=())


_DEFAULT_SESSION = (SessionHours(date(2000, 1, 1), SESSION_OPEN, SESSION_CLOSE),)


class NseCalendar:
    """Trading days and session times per segment; returned datetimes are aware (Asia/Kolkata).

    ``holidays`` close every segment; ``segment_holidays`` close only the named segment;
    ``sessions`` maps a segment to its dated session hours (missing: 09:15-15:30).
    """

    def __init__(
        self,
        holidays: Iterable[date | str] = (),
        sessions: Mapping[str, Sequence[SessionHours]] | None = None,
        segment_holidays: Mapping[str, Iterable[date | str]] | None = None,
    ):
        self.holidays: frozenset[date] = frozenset(_as_date(h) for h in holidays)
        self._segment_holidays = {
            seg: frozenset(_as_date(h) for h in days) for seg, days in (segment_holidays or {}).items()
        }
        self._sessions = {
            seg: tuple(sorted(rules, key=lambda r: r.effective_from))
            for seg, rules in (sessions or {}).items()
        }

    # ------------------------------------------------------------------ segments

    def _seg(self, segment: str | None) -> str:
        seg = segment or EQUITY
        if seg not in self._sessions and seg in _SEGMENT_FALLBACK:
            return _SEGMENT_FALLBACK[seg]
        return seg

    def hours(self, day: date, segment: str | None = None) -> SessionHours:
        """The session rule in force on ``day`` for ``segment``."""
        rules = self._sessions.get(self._seg(segment)) or _DEFAULT_SESSION
        current = rules[0]
        for rule in rules:
            if rule.effective_from <= day:
                current = rule
        return current

    def holidays_for(self, segment: str | None = None) -> frozenset[date]:
        return self.holidays | self._segment_holidays.get(self._seg(segment), frozenset())

    # ------------------------------------------------------------------ days

    def is_trading_day(self, day: date, segment: str | None = None) -> bool:
        if day.weekday() >= 5 or day in self.holidays:
            return False
        extra = self._segment_holidays.get(self._seg(segment))
        return not (extra and day in extra)

    def session_open(self, day: date, segment: str | None = None) -> datetime:
        return datetime.combine(day, self.hours(day, segment).open, tzinfo=IST)

    def session_close(self, day: date, segment: str | None = None) -> datetime:
        return datetime.combine(day, self.hours(day, segment).close, tzinfo=IST)

    def next_trading_day(self, day: date, include: bool = False, segment: str | None = None) -> date:
        d = day if include else day + timedelta(days=1)
        for _ in range(_MAX_SCAN_DAYS):
            if self.is_trading_day(d, segment):
                return d
            d += timedelta(days=1)
        raise ValidationFailed(f"no trading day within {_MAX_SCAN_DAYS} days after {day}")

    def previous_trading_day(self, day: date, include: bool = False, segment: str | None = None) -> date:
        d = day if include else day - timedelta(days=1)
        for _ in range(_MAX_SCAN_DAYS):
            if self.is_trading_day(d, segment):
                return d
            d -= timedelta(days=1)
        raise ValidationFailed(f"no trading day within {_MAX_SCAN_DAYS} days before {day}")

    def trading_days(self, start: date, end: date, segment: str | None = None) -> list[date]:
        """Trading days in [start, end] inclusive."""
        out: list[date] = []
        d = start
        while d <= end:
            if self.is_trading_day(d, segment):
                out.append(d)
            d += timedelta(days=1)
        return out

    def expiry_day(self, scheduled: date, segment: str = DERIVATIVES) -> date:
        """A contract's expiry: the scheduled day, or the previous trading day when that is a holiday
        (NSE moves an expiry falling on a holiday to the previous trading day)."""
        return self.previous_trading_day(scheduled, include=True, segment=segment)

    # ------------------------------------------------------------------ sessions

    def market_status(self, now: datetime, segment: str | None = None) -> MarketStatus:
        if now.tzinfo is None:
            raise ValidationFailed("now must be timezone-aware", details={"field": "now"})
        local = now.astimezone(IST)
        today = local.date()
        if self.is_trading_day(today, segment):
            open_, close = self.session_open(today, segment), self.session_close(today, segment)
            if open_ <= local < close:
                nxt = self.next_trading_day(today, segment=segment)
                return MarketStatus(True, self.session_open(nxt, segment), close, "open")
            if local < open_:
                return MarketStatus(False, open_, close, "pre_open")
            reason = "after_close"
        else:
            reason = "holiday" if today.weekday() < 5 else "weekend"
        nxt = self.next_trading_day(today, segment=segment)
        return MarketStatus(False, self.session_open(nxt, segment), self.session_close(nxt, segment), reason)

    def is_open(self, now: datetime, segment: str | None = None) -> bool:
        return self.market_status(now, segment).is_open

    def next_open(self, now: datetime, segment: str | None = None) -> datetime:
        """The coming session open (strictly after ``now`` when the session is open)."""
        return self.market_status(now, segment).next_open


def market_status(now: datetime, holidays: Iterable[date | str] = ()) -> MarketStatus:
    """Convenience wrapper around :meth:`NseCalendar.market_status`."""
    return NseCalendar(holidays).market_status(now)


def session_close(day: date) -> datetime:
    """15:30 IST of ``day`` (aware): the default equity close."""
    return datetime.combine(day, SESSION_CLOSE, tzinfo=IST)


# --------------------------------------------------------------------------- data files


def parse_sessions(doc: Mapping[str, Any]) -> dict[str, list[SessionHours]]:
    """``{"segments": {SEG: [{"from": date, "open": "09:15", "close": "15:30", "source": ...}]}}``."""
    segments = doc.get("segments") if isinstance(doc, Mapping) else None
    if not isinstance(segments, Mapping) or not segments:
        raise ValidationFailed("a sessions file needs a 'segments' mapping", details={"field": "segments"})
    out: dict[str, list[SessionHours]] = {}
    for seg, rules in segments.items():
        if not isinstance(rules, list) or not rules:
            raise ValidationFailed(f"segment {seg}: a list of session rules is required", {"field": seg})
        parsed = []
        for i, rule in enumerate(rules):
            where = f"segments.{seg}.{i}"
            if not isinstance(rule, Mapping):
                raise ValidationFailed(f"{where}: must be a mapping", {"field": where})
            open_, close = (
                _as_time(rule.get("open"), f"{where}.open"),
                _as_time(rule.get("close"), f"{where}.close"),
            )
            if close <= open_:
                raise ValidationFailed(f"{where}: close must be after open", {"field": where})
            parsed.append(
                SessionHours(
                    _as_date(rule.get("from", "2000-01-01")), open_, close, str(rule.get("source", ""))
                )
            )
        out[str(seg)] = parsed
    return out


def parse_holiday_file(doc: Mapping[str, Any]) -> HolidayFile:
    """A year's holiday list: ``exchange``, ``year``, ``source``, ``status`` and ``holidays``
    (``[{"date": YYYY-MM-DD, "name": ..., "segments": [...]}]``); every date must be in ``year``."""
    if not isinstance(doc, Mapping):
        raise ValidationFailed("a holiday file must be a mapping", details={"field": "holidays"})
    exchange = str(doc.get("exchange") or "").strip().upper()
    if not exchange:
        raise ValidationFailed("exchange is required", details={"field": "exchange"})
    try:
        year = int(doc.get("year"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValidationFailed("year must be an integer", details={"field": "year"}) from None
    status = str(doc.get("status") or "published")
    if status not in ("published", "provisional"):
        raise ValidationFailed("status must be published or provisional", details={"field": "status"})
    entries = doc.get("holidays")
    if not isinstance(entries, list):
        raise ValidationFailed("holidays must be a list", details={"field": "holidays"})
    default_segments = tuple(str(s) for s in doc.get("segments") or ())
    out: list[Holiday] = []
    seen: set[date] = set()
    for i, entry in enumerate(entries):
        where = f"holidays.{i}"
        if not isinstance(entry, Mapping) or "date" not in entry:
            raise ValidationFailed(f"{where}: needs a date", details={"field": where})
        day = _as_date(entry["date"])
        if day.year != year:
            raise ValidationFailed(f"{where}: {day} is not in {year}", details={"field": where})
        if day in seen:
            raise ValidationFailed(f"{where}: {day} is listed twice", details={"field": where})
        seen.add(day)
        segs = tuple(str(s) for s in entry.get("segments") or default_segments)
        out.append(Holiday(day, str(entry.get("name") or ""), segs))
    return HolidayFile(exchange, year, tuple(out), str(doc.get("source") or ""), status, default_segments)


def build_calendar(
    sessions: Mapping[str, Sequence[SessionHours]] | None,
    holidays: Iterable[Holiday],
    extra: Iterable[date | str] = (),
) -> NseCalendar:
    """A calendar from parsed data: holidays naming no segment close every segment."""
    common: set[date] = {_as_date(d) for d in extra}
    per_segment: dict[str, set[date]] = {}
    for h in holidays:
        if not h.segments:
            common.add(h.day)
        for seg in h.segments:
            per_segment.setdefault(seg, set()).add(h.day)
    # a holiday naming every segment with sessions is a common one (the UDF list shows it)
    segs = set(sessions or {}) or {EQUITY}
    for day in {d for days in per_segment.values() for d in days}:
        if all(day in per_segment.get(s, ()) for s in segs):
            common.add(day)
    return NseCalendar(common, sessions, per_segment)


def _as_time(value: Any, where: str) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int):  # YAML 1.1 reads 09:15 unquoted as sexagesimal minutes
        return time(value // 60, value % 60)
    try:
        return time.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationFailed(
            f"{where}: invalid time {value!r} (expected HH:MM)", {"field": where}
        ) from None


def _as_date(value: date | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationFailed(f"invalid holiday date {value!r} (expected YYYY-MM-DD)") from None
