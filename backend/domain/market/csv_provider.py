"""Market data replayed from OHLCV CSV files: one file per symbol, ``<folder>/<SYMBOL>.csv``.

Accepted layout (as exported by pandas/yfinance): a first date column that is unnamed or named
date/datetime/timestamp/time, then Open, High, Low, Close, Volume (case-insensitive, any order).
Dates are YYYY-MM-DD (a daily bar, stamped like every daily bar at 09:15 IST) or ISO
timestamps (naive ones are taken as Asia/Kolkata). Files are parsed once and cached.
"""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from backend.domain.errors import NotFound, ValidationFailed
from backend.domain.market.provider import (
    IST,
    MarketDataProvider,
    daily_bar_ts,
    interval_delta,
    unique,
    validate_range,
)
from backend.domain.market.types import Candle, Quote, Tick
from backend.domain.options.chain import OptionChain

_DATE_NAMES = {"", "date", "datetime", "timestamp", "time"}
_PRICE_COLS = ("open", "high", "low", "close")


def load_csv_candles(path: Path | str) -> tuple[list[Candle], bool]:
    """Parse one OHLCV file; returns (candles ascending, is_daily).

    Errors are ValidationFailed naming the file, the row (header = row 1) and the column."""
    path = Path(path)
    name = path.name
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise ValidationFailed(f"{name}: cannot read file ({exc.strerror})") from None
    if not rows:
        raise ValidationFailed(f"{name}: file is empty", details={"file": name, "row": 1})
    header = [h.strip().lower() for h in rows[0]]
    if header[0] not in _DATE_NAMES:
        raise ValidationFailed(
            f"{name}: row 1: first column must be the date (unnamed or date/timestamp), got {rows[0][0]!r}",
            details={"file": name, "row": 1, "column": rows[0][0]},
        )
    idx: dict[str, int] = {}
    for col in (*_PRICE_COLS, "volume"):
        if col not in header:
            raise ValidationFailed(
                f"{name}: row 1: missing column {col.capitalize()!r}",
                details={"file": name, "row": 1, "column": col.capitalize()},
            )
        idx[col] = header.index(col)
    date_col = rows[0][0] or "date"
    candles: list[Candle] = []
    daily = True
    for n, raw in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in raw):
            continue  # tolerate blank lines (e.g. a trailing newline)

        def bad(column: str, problem: str, value: str, n: int = n) -> ValidationFailed:
            return ValidationFailed(
                f"{name}: row {n}, column {column!r}: {problem} (got {value!r})",
                details={"file": name, "row": n, "column": column},
            )

        if len(raw) < len(header):
            raise bad(rows[0][len(raw)] or date_col, "missing value", "")
        ts, is_day = _parse_ts(raw[0].strip(), lambda p, v: bad(date_col, p, v))
        daily = daily and is_day
        vals: dict[str, Decimal] = {}
        for col in _PRICE_COLS:
            cell = raw[idx[col]].strip()
            try:
                v = Decimal(cell)
            except InvalidOperation:
                raise bad(col.capitalize(), "not a number", cell) from None
            if not v.is_finite() or v <= 0:
                raise bad(col.capitalize(), "price must be a positive number", cell)
            vals[col] = v
        vcell = raw[idx["volume"]].strip()
        try:
            vol_d = Decimal(vcell) if vcell else Decimal(0)
        except InvalidOperation:
            raise bad("Volume", "not a number", vcell) from None
        if not vol_d.is_finite() or vol_d < 0 or vol_d != vol_d.to_integral_value():
            raise bad("Volume", "must be a whole number >= 0", vcell)
        o, h, lo, c = vals["open"], vals["high"], vals["low"], vals["close"]
        if h < max(o, c, lo):
            raise bad("High", "below Open/Low/Close", raw[idx["high"]])
        if lo > min(o, c):
            raise bad("Low", "above Open/Close", raw[idx["low"]])
        if candles and ts <= candles[-1].ts:
            raise bad(date_col, "timestamps must be strictly increasing", raw[0])
        candles.append(Candle(ts=ts, open=o, high=h, low=lo, close=c, volume=int(vol_d)))
    if not candles:
        raise ValidationFailed(f"{name}: no data rows", details={"file": name, "row": 2})
    return candles, daily


def _parse_ts(cell: str, bad) -> tuple[datetime, bool]:
    if not cell:
        raise bad("missing date", cell)
    try:
        if len(cell) == 10:
            return daily_bar_ts(date.fromisoformat(cell)), True
        dt = datetime.fromisoformat(cell.replace("Z", "+00:00"))
    except ValueError:
        raise bad("not a YYYY-MM-DD date or ISO timestamp", cell) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=IST)
    return dt.astimezone(UTC), False


class CsvProvider(MarketDataProvider):
    """Candles, quotes and replayed ticks from a folder of ``SYMBOL.csv`` files."""

    name = "csv"

    def __init__(self, folder: str | Path = "data", **_unused: object):
        self.folder = Path(folder)
        self._cache: dict[str, tuple[list[Candle], bool]] = {}
        self._cursor: dict[str, int] = {}

    def _load(self, symbol: str) -> tuple[list[Candle], bool]:
        key = symbol.upper()
        if key not in self._cache:
            if not key.replace("-", "").replace("_", "").replace("&", "").isalnum():
                raise ValidationFailed(f"invalid symbol {symbol!r}", details={"field": "symbol"})
            path = self.folder / f"{key}.csv"
            if not path.is_file():
                raise NotFound(f"no CSV data for {symbol!r}", details={"symbol": symbol})
            self._cache[key] = load_csv_candles(path)
        return self._cache[key]

    def candles(self, symbol: str, interval: str, start: datetime, end: datetime) -> list[Candle]:
        validate_range(interval, start, end)
        bars, daily = self._load(symbol)
        if daily and interval != "1d":
            raise ValidationFailed(
                f"{symbol} has daily data only; interval {interval} is not available",
                details={"field": "interval"},
            )
        selected = [b for b in bars if start <= b.ts <= end]
        if daily or interval == _native_interval(bars):
            return selected
        return _aggregate(selected, interval)

    def quotes(self, symbols: list[str]) -> dict[str, Quote]:
        out: dict[str, Quote] = {}
        for sym in unique(symbols):
            bars, _daily = self._load(sym)
            last = bars[-1]
            prev = bars[-2].close if len(bars) > 1 else last.open
            out[sym] = Quote(
                symbol=sym.upper(),
                ltp=last.close,
                bid=last.close,
                ask=last.close,
                open=last.open,
                high=last.high,
                low=last.low,
                close=prev,
                volume=last.volume,
                ts=last.ts,
            )
        return out

    def tick(self, symbols: list[str], now: datetime) -> list[Tick]:
        """Replays each file bar by bar (one close per call), wrapping round at the end."""
        out: list[Tick] = []
        for sym in unique(symbols):
            bars, _daily = self._load(sym)
            i = self._cursor.get(sym.upper(), 0) % len(bars)
            self._cursor[sym.upper()] = i + 1
            b = bars[i]
            out.append(Tick(sym.upper(), b.close, b.close, b.close, b.volume, now, b.volume))
        return out

    def option_chain(self, underlying: str, expiry: date) -> OptionChain:
        raise ValidationFailed("not supported by CSV provider")

    def expiries(self, underlying: str) -> list[date]:
        raise ValidationFailed("not supported by CSV provider")


def _native_interval(bars: list[Candle]) -> str | None:
    if len(bars) < 2:
        return None
    step = min(b.ts - a.ts for a, b in zip(bars, bars[1:], strict=False))
    for name, width in (("1m", timedelta(minutes=1)), ("5m", timedelta(minutes=5))):
        if step == width:
            return name
    for name in ("15m", "1h"):
        if step == interval_delta(name):
            return name
    return None


def _aggregate(bars: list[Candle], interval: str) -> list[Candle]:
    """Group intraday bars into ``interval`` buckets counted from 09:15 IST of each day
    (or into days for "1d")."""
    width = interval_delta(interval)
    groups: dict[datetime, list[Candle]] = {}
    for b in bars:
        local = b.ts.astimezone(IST)
        if interval == "1d":
            key = daily_bar_ts(local.date())
        else:
            origin = local.replace(hour=9, minute=15, second=0, microsecond=0)
            k = (local - origin) // width
            key = (origin + k * width).astimezone(UTC)
        groups.setdefault(key, []).append(b)
    return [
        Candle(
            ts=k,
            open=g[0].open,
            high=max(x.high for x in g),
            low=min(x.low for x in g),
            close=g[-1].close,
            volume=sum(x.volume for x in g),
        )
        for k, g in sorted(groups.items())
    ]
