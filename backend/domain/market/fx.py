"""Foreign-exchange rates behind one interface, so other sources can be plugged in.

``FxProvider.rates(base, quote, start, end)`` answers ``{day: units of quote per 1 base}`` for the
days in [start, end] the source has (FX trades Monday to Friday; callers carry a rate over
holidays). Two providers ship:

* ``simulated``: a seeded, deterministic random walk per currency against INR (no internet needed);
  cross rates go through INR, so ``USD->EUR`` and ``EUR->USD`` are exact inverses. Its reference
  levels are only starting points, not market data.
* ``csv``: one file per pair, ``<folder>/<BASE><QUOTE>.csv`` (e.g. ``USDINR.csv``), a date column
  first and a ``Close`` (or ``Rate``) column; the inverse file is used, inverted, when only that
  one exists.

Register another with :func:`register_fx_provider` (e.g. an RBI reference-rate importer).
"""

from __future__ import annotations

import csv
import hashlib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from backend.domain.errors import NotFound, ValidationFailed

HOME = "INR"  # the currency NSE instruments trade in


def _check_code(code: str, field: str = "currency") -> str:
    c = str(code).strip().upper()
    if len(c) != 3 or not c.isalpha():
        raise ValidationFailed(
            f"{code!r} is not an ISO 4217 currency code",
            {"fields": {field: ["Must be 3 letters, e.g. USD."]}},
        )
    return c


class FxProvider(ABC):
    name = "abstract"

    @abstractmethod
    def rates(self, base: str, quote: str, start: date, end: date) -> dict[date, float]:
        """Units of ``quote`` per 1 ``base`` on each day of [start, end] the source has."""

    def currencies(self) -> list[str]:
        """Currency codes this provider can convert (informational)."""
        return []


# ----------------------------------------------------------------------------- simulated

# Rough INR per unit levels at the anchor date: a starting point for the walk, not market data.
SIM_REFERENCE: dict[str, float] = {
    "INR": 1.0,
    "USD": 83.2,
    "EUR": 91.8,
    "GBP": 106.0,
    "JPY": 0.59,
    "SGD": 63.0,
    "AED": 22.65,
    "CHF": 98.9,
    "AUD": 56.7,
}


def _normal(*parts: object) -> float:
    h = hashlib.blake2b("|".join(str(p) for p in parts).encode(), digest_size=16).digest()
    u1 = (int.from_bytes(h[:8], "big") + 1) / (2**64 + 1)
    u2 = int.from_bytes(h[8:], "big") / 2**64
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


class SimulatedFxProvider(FxProvider):
    """Each currency's INR rate is ``reference * exp(walk)``: daily log-moves ``vol/sqrt(260) * z``
    with ``z`` drawn from ``blake2b(seed, currency, day)``, summed from ``anchor_date`` (where
    the walk is 0). A rate depends only on (seed, currency, day): overlapping requests agree."""

    name = "simulated"

    def __init__(
        self,
        seed: int | str = 42,
        vol: float = 0.06,
        anchor_date: date | str = "2024-01-01",
        reference: dict[str, float] | None = None,
        **_unused: object,
    ):
        self.seed = str(seed)
        self.vol = float(vol)
        self.anchor = anchor_date if isinstance(anchor_date, date) else date.fromisoformat(str(anchor_date))
        self.reference = {k.upper(): float(v) for k, v in (reference or SIM_REFERENCE).items()}

    def currencies(self) -> list[str]:
        return sorted(self.reference)

    def _check(self, ccy: str) -> None:
        if ccy not in self.reference:
            raise NotFound(
                f"no simulated FX rate for {ccy}; known: {', '.join(self.currencies())}",
                {"fields": {"currency": [f"Unknown currency {ccy}."]}},
                code="FX_RATE_NOT_FOUND",
            )

    def _home_rates(self, ccy: str, start: date, end: date) -> dict[date, float]:
        """INR per 1 ``ccy`` on each weekday of [start, end]: one pass over the walk from the anchor."""
        if ccy == HOME:
            return {d: 1.0 for d in _weekdays(start, end)}
        step = self.vol / math.sqrt(260.0)
        ref = self.reference[ccy]
        out: dict[date, float] = {}
        # walk(d) = sum of the moves of the weekdays in (anchor, d]; before the anchor, minus the
        # moves of the weekdays in (d, anchor].
        total = 0.0
        for d in _weekdays(self.anchor + timedelta(days=1), end):
            total += step * _normal(self.seed, "fx", ccy, d.isoformat())
            if d >= start:
                out[d] = ref * math.exp(total)
        # before the anchor: a day's level is the next weekday's minus that weekday's move
        total, nxt = 0.0, self.anchor
        if start <= self.anchor <= end and self.anchor.weekday() < 5:
            out[self.anchor] = ref
        for d in reversed(_weekdays(start, self.anchor - timedelta(days=1))):
            if nxt.weekday() < 5:
                total -= step * _normal(self.seed, "fx", ccy, nxt.isoformat())
            if d <= end:
                out[d] = ref * math.exp(total)
            nxt = d
        return out

    def rates(self, base: str, quote: str, start: date, end: date) -> dict[date, float]:
        base, quote = _check_code(base), _check_code(quote)
        self._check(base)
        self._check(quote)
        if end < start:
            return {}
        b, q = self._home_rates(base, start, end), self._home_rates(quote, start, end)
        return {d: b[d] / q[d] for d in sorted(b)}


def _weekdays(start: date, end: date) -> list[date]:
    out, d = [], start
    while d <= end:
        if d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    return out


# ----------------------------------------------------------------------------- CSV

_DATE_COLUMNS = {"", "date", "datetime", "timestamp", "time"}
_RATE_COLUMNS = ("close", "rate", "price", "value")


def load_fx_csv(path: Path) -> dict[date, float]:
    """``{day: rate}`` of one pair file; errors name the file, row and column."""
    name = path.name
    with path.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise ValidationFailed(f"{name}: file is empty", {"file": name, "row": 1})
    header = [h.strip().lower() for h in rows[0]]
    if header[0] not in _DATE_COLUMNS:
        raise ValidationFailed(f"{name}: row 1: the first column must be the date", {"file": name, "row": 1})
    col = next((header.index(c) for c in _RATE_COLUMNS if c in header), None)
    if col is None:
        raise ValidationFailed(
            f"{name}: row 1: no rate column (one of {', '.join(_RATE_COLUMNS)})", {"file": name, "row": 1}
        )
    out: dict[date, float] = {}
    for n, raw in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in raw):
            continue
        cell = raw[0].strip()
        try:
            day = date.fromisoformat(cell) if len(cell) == 10 else datetime.fromisoformat(cell).date()
        except ValueError:
            raise ValidationFailed(
                f"{name}: row {n}: date {cell!r} is not YYYY-MM-DD",
                {"file": name, "row": n, "column": rows[0][0]},
            ) from None
        try:
            rate = float(raw[col])
        except (ValueError, IndexError):
            raise ValidationFailed(
                f"{name}: row {n}: rate is not a number", {"file": name, "row": n, "column": rows[0][col]}
            ) from None
        if not math.isfinite(rate) or rate <= 0:
            raise ValidationFailed(
                f"{name}: row {n}: rate must be positive", {"file": name, "row": n, "column": rows[0][col]}
            )
        out[day] = rate
    return out


class CsvFxProvider(FxProvider):
    name = "csv"

    def __init__(self, folder: str | Path = "data", **_unused: object):
        self.folder = Path(folder)
        self._cache: dict[str, dict[date, float]] = {}

    def _pair(self, base: str, quote: str) -> dict[date, float]:
        key = base + quote
        if key not in self._cache:
            direct, inverse = self.folder / f"{key}.csv", self.folder / f"{quote}{base}.csv"
            if direct.is_file():
                self._cache[key] = load_fx_csv(direct)
            elif inverse.is_file():
                self._cache[key] = {d: 1.0 / r for d, r in load_fx_csv(inverse).items()}
            else:
                raise NotFound(
                    f"no FX data for {base}/{quote}: add {direct.name} (or {inverse.name})",
                    {"fields": {"currency": [f"No FX data for {base}/{quote}."]}},
                    code="FX_RATE_NOT_FOUND",
                )
        return self._cache[key]

    def rates(self, base: str, quote: str, start: date, end: date) -> dict[date, float]:
        base, quote = _check_code(base), _check_code(quote)
        if base == quote:
            d, out = start, {}
            while d <= end:
                out[d] = 1.0
                d += timedelta(days=1)
            return out
        return {d: r for d, r in self._pair(base, quote).items() if start <= d <= end}


# ----------------------------------------------------------------------------- registry

FxFactory = Callable[..., FxProvider]
_REGISTRY: dict[str, FxFactory] = {"simulated": SimulatedFxProvider, "csv": CsvFxProvider}


def register_fx_provider(name: str, factory: FxFactory) -> None:
    _REGISTRY[name] = factory


def fx_providers() -> list[str]:
    return sorted(_REGISTRY)


def build_fx_provider(name: str, **settings: Any) -> FxProvider:
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValidationFailed(
            f"unknown FX provider {name!r}; expected one of {', '.join(fx_providers())}",
            {"field": "FX_PROVIDER"},
        ) from None
    return factory(**settings)
