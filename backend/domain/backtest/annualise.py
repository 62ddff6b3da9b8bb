"""Periods per year from the bars' own spacing and the market's calendar.

* Bar spacing: the median gap between consecutive timestamps (robust to weekends, holidays and
  the overnight gap of a session market).
* Market calendars (``MARKETS``): NSE 252 trading days of 375 minutes (09:15-15:30 IST,
  ``backend.domain.market.calendar.SESSION_MINUTES``); crypto trades 24x7 (365 days of 24 h); FX
  trades 24x5 (260 weekdays of 24 h).
* Spacing of 27 days or more is monthly (12 a year), about 3 months quarterly (4), about a year
  annual (1), 6 days or more weekly (52); 20 hours or more daily (the market's days a year);
  below that intraday: ``ceil(session minutes / bar minutes)`` bars a day times the days a year
  (NSE hourly bars 09:15 ... 15:15 are 7 a day, the last one 15 minutes long).
* ``market="auto"`` reads the calendar from the timestamps: more than 10 % of bars on a Saturday
  or Sunday (UTC) is crypto; otherwise intraday bars with more than 10 % outside the NSE session
  are FX; everything else is NSE. Daily bars on weekdays only cannot tell NSE (252) from FX (260):
  they are taken as NSE; pass ``market`` or ``periods_per_year`` to decide.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from backend.domain.errors import ValidationFailed
from backend.domain.market.calendar import SESSION_MINUTES

DEFAULT_PERIODS_PER_YEAR = 252.0


@dataclass(frozen=True)
class Market:
    days_per_year: float
    session_minutes: float
    session_utc: tuple[int, int] | None = None  # session [open, close) in minutes after 00:00 UTC


MARKETS = {
    # 09:15-15:30 IST = 03:45-10:00 UTC
    "nse": Market(252.0, float(SESSION_MINUTES), (3 * 60 + 45, 10 * 60)),
    "crypto": Market(365.0, 1440.0),
    "fx": Market(260.0, 1440.0),
}
MARKET_CHOICES = ("auto", *MARKETS)


@dataclass(frozen=True)
class Annualisation:
    periods_per_year: float
    basis: str  # "override" | "inferred" | "default" (no timestamps)
    market: str | None = None
    bar_seconds: float | None = None
    frequency: str | None = None  # "monthly", "daily", "60min", ...

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _epoch_seconds(times: np.ndarray) -> np.ndarray:
    t = np.asarray(times)
    if t.dtype == np.dtype("datetime64[ns]"):
        return t.view(np.int64) // 1_000_000_000  # floors like numpy's unit cast, ~5x faster
    return t.astype("datetime64[s]").astype(np.int64)


def _share(
    ticks: np.ndarray, step: int | None, period: int, hit: Callable[[np.ndarray], np.ndarray]
) -> float:
    """Fraction of ``ticks`` where ``hit`` holds, for a ``hit`` that depends only on the tick
    modulo ``period``. Evenly spaced ticks (``t0 + k * step``) repeat that pattern every
    ``period / gcd(step, period)`` bars (a week of minute bars: 10,080), so one cycle is counted
    and scaled: the same count, exactly, as testing every bar, without a pass over 5M bars."""
    n = ticks.size
    if step is not None and step > 0:
        cycle = period // math.gcd(step, period)
        if cycle < n:
            full, rest = divmod(n, cycle)
            count = full * int(np.count_nonzero(hit(ticks[:cycle]))) + int(
                np.count_nonzero(hit(ticks[:rest]))
            )
            return count / n
    return int(np.count_nonzero(hit(ticks))) / n


def detect_market(times: np.ndarray, bar_seconds: float, step: int | None = None) -> str:
    """``step``: the gap between every pair of consecutive ``times`` in the array's own unit
    when they are evenly spaced (counts one calendar cycle instead of every bar)."""
    t = np.asarray(times)
    # in the array's own integer unit: day and week boundaries are whole multiples of it, so one
    # modulo gives the weekday (1970-01-01 was a Thursday) and the time of day, with no division
    if t.dtype == np.dtype("datetime64[ns]"):
        ticks, unit = t.view(np.int64), 1_000_000_000
    else:
        ticks, unit, step = _epoch_seconds(t), 1, None
    day = 86400 * unit
    if _share(ticks, step, 7 * day, lambda x: (x + 3 * day) % (7 * day) >= 5 * day) > 0.10:  # Sat or Sun
        return "crypto"
    if bar_seconds < 20 * 3600:
        lo, hi = MARKETS["nse"].session_utc or (0, 1440)

        def outside(x: np.ndarray) -> np.ndarray:
            of_day = x % day
            return (of_day < lo * 60 * unit) | (of_day >= hi * 60 * unit)

        if _share(ticks, step, day, outside) > 0.10:
            return "fx"
    return "nse"


def _even_step(ticks: np.ndarray, block: int = 1 << 16) -> int | None:
    """The gap between consecutive ``ticks`` when every gap is the same positive value, else None
    (the gaps taken a cache-sized block at a time: no full-length array of them)."""
    n = ticks.size
    if n < 2:
        return None
    step = int(ticks[1]) - int(ticks[0])
    if step <= 0:
        return None
    buf = np.empty(min(block, n - 1), dtype=np.int64)
    for s in range(0, n - 1, block):
        e = min(s + block, n - 1)
        gaps = np.subtract(ticks[s + 1 : e + 1], ticks[s:e], out=buf[: e - s])
        if gaps.min() != step or gaps.max() != step:
            return None
    return step


def infer(times: np.ndarray | None, market: str = "auto", override: float | None = None) -> Annualisation:
    """Periods per year for ``times`` (``datetime64``) on ``market`` (or the ``override``)."""
    if market not in MARKET_CHOICES:
        raise ValidationFailed(
            f"unknown market {market!r}", details={"market": [f"one of {', '.join(MARKET_CHOICES)}"]}
        )
    if override is not None:
        if not (override > 0 and math.isfinite(override)):
            raise ValidationFailed(
                "periods_per_year must be positive", details={"periods_per_year": ["must be positive"]}
            )
        return Annualisation(float(override), "override", None if market == "auto" else market)
    if times is None or np.asarray(times).size < 2 or np.asarray(times).dtype.kind != "M":
        return Annualisation(DEFAULT_PERIODS_PER_YEAR, "default", None if market == "auto" else market)
    times = np.asarray(times)
    step = _even_step(times.view(np.int64)) if times.dtype == np.dtype("datetime64[ns]") else None
    if step is not None and step % 1_000_000_000 == 0:
        # evenly spaced whole seconds: every gap in seconds is step / 1e9, so that is the median
        bar = float(step // 1_000_000_000)
    else:
        step = None
        t = _epoch_seconds(times)
        gaps = np.diff(t)
        gaps = gaps[gaps > 0]
        if not gaps.size:
            return Annualisation(DEFAULT_PERIODS_PER_YEAR, "default", None if market == "auto" else market)
        bar = float(np.median(gaps))
    name = detect_market(times, bar, step) if market == "auto" else market
    cal = MARKETS[name]
    day = 86400.0
    if bar >= 300 * day:
        ppy, freq = 1.0, "annual"
    elif bar >= 80 * day:
        ppy, freq = 4.0, "quarterly"
    elif bar >= 27 * day:
        ppy, freq = 12.0, "monthly"
    elif bar >= 6 * day:
        ppy, freq = 52.0, "weekly"
    elif bar >= 20 * 3600:
        ppy, freq = cal.days_per_year, "daily"
    else:
        per_day = math.ceil(cal.session_minutes * 60.0 / bar - 1e-9)
        ppy, freq = per_day * cal.days_per_year, f"{bar / 60:g}min"
    return Annualisation(float(ppy), "inferred", name, bar, freq)
