"""The market-data provider interface, interval helpers and the provider registry.

Every provider (simulated, CSV, Upstox) implements :class:`MarketDataProvider`. Callers speak
in trading symbols ("RELIANCE", "NIFTY"); providers map them to their own keys.

Timestamps: candle ``ts`` is the bar open time, timezone-aware UTC. Daily bars are stamped
with the session open of their trading day (09:15 Asia/Kolkata), so ``ts`` converted to IST
always falls on the trading date (see :func:`daily_bar_ts`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from backend.domain.errors import ValidationFailed
from backend.domain.market.types import Candle, Quote, Tick
from backend.domain.options.chain import OptionChain

IST = ZoneInfo("Asia/Kolkata")

INTERVALS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}

# Longest [start, end] span the API accepts per interval. Mirrors Upstox's v3 historical
# limits (1 month for <= 15 minute bars, 1 quarter for hours, 1 decade for days) so a request
# that works against the simulator also works against the broker.
MAX_RANGE: dict[str, timedelta] = {
    "1m": timedelta(days=31),
    "5m": timedelta(days=31),
    "15m": timedelta(days=31),
    "1h": timedelta(days=92),
    "1d": timedelta(days=3653),
}

SESSION_OPEN_IST = time(9, 15)


def interval_delta(interval: str) -> timedelta:
    """Length of one bar of ``interval``; ValidationFailed for an unknown interval."""
    try:
        return INTERVALS[interval]
    except KeyError:
        raise ValidationFailed(
            f"unknown interval {interval!r}; expected one of {', '.join(INTERVALS)}",
            details={"field": "interval", "allowed": list(INTERVALS)},
        ) from None


def validate_range(interval: str, start: datetime, end: datetime) -> None:
    """Check interval, timezone-awareness, ordering and the per-interval maximum span."""
    interval_delta(interval)
    if start.tzinfo is None or end.tzinfo is None:
        raise ValidationFailed("start and end must be timezone-aware", details={"field": "start"})
    if end < start:
        raise ValidationFailed("end must not be before start", details={"field": "end"})
    if end - start > MAX_RANGE[interval]:
        raise ValidationFailed(
            f"range too long for interval {interval}: at most {MAX_RANGE[interval].days} days",
            details={"field": "end", "max_days": MAX_RANGE[interval].days},
        )


def daily_bar_ts(day: date) -> datetime:
    """UTC timestamp used for the daily bar of ``day`` (its 09:15 IST session open)."""
    return datetime.combine(day, SESSION_OPEN_IST, tzinfo=IST).astimezone(UTC)


def round_to_tick(value: Decimal | float, tick: Decimal) -> Decimal:
    """Round a price to the nearest multiple of ``tick`` (half-up), keeping tick's exponent."""
    d = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    steps = (d / tick).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return (steps * tick).quantize(tick)


def chain_pcr(chain: OptionChain) -> float:
    """Put-call ratio by open interest (total put OI / total call OI); 0.0 without call OI."""
    call_oi = sum(r.call.oi for r in chain.rows if r.call is not None)
    put_oi = sum(r.put.oi for r in chain.rows if r.put is not None)
    return put_oi / call_oi if call_oi else 0.0


class MarketDataProvider(ABC):
    """Read-only market data. Implementations raise domain errors only (never HTTP codes)."""

    name: str = "abstract"

    @abstractmethod
    def quotes(self, symbols: list[str]) -> dict[str, Quote]:
        """Full quotes for all ``symbols`` in one batch, keyed by symbol."""

    def ltp(self, symbols: list[str]) -> dict[str, Decimal]:
        """Last traded prices keyed by symbol (default: taken from :meth:`quotes`)."""
        return {s: q.ltp for s, q in self.quotes(symbols).items()}

    @abstractmethod
    def candles(self, symbol: str, interval: str, start: datetime, end: datetime) -> list[Candle]:
        """Bars whose open time lies in [start, end], ascending by ``ts``."""

    @abstractmethod
    def option_chain(self, underlying: str, expiry: date) -> OptionChain:
        """Option chain of ``underlying`` for ``expiry``."""

    @abstractmethod
    def expiries(self, underlying: str) -> list[date]:
        """Listed option expiries of ``underlying``, ascending."""

    @abstractmethod
    def tick(self, symbols: list[str], now: datetime) -> list[Tick]:
        """The next live tick of each symbol at ``now`` (used by the live feed)."""


ProviderFactory = Callable[..., MarketDataProvider]
_REGISTRY: dict[str, ProviderFactory] = {}


def register_provider(name: str, factory: ProviderFactory) -> None:
    """Register (or replace) the factory used by :func:`build_provider` for ``name``."""
    _REGISTRY[name] = factory


def available_providers() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def build_provider(name: str, **settings: Any) -> MarketDataProvider:
    """Build a provider by registry name ("simulated", "csv", "upstox") with its settings."""
    _load_builtin()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValidationFailed(
            f"unknown market data provider {name!r}; expected one of {', '.join(sorted(_REGISTRY))}",
            details={"field": "provider"},
        ) from None
    return factory(**settings)


def _load_builtin() -> None:
    # Imported lazily: the concrete modules import this one, so registering at import time
    # here would be circular.
    if {"simulated", "csv", "upstox"} <= _REGISTRY.keys():
        return
    from backend.domain.market.csv_provider import CsvProvider
    from backend.domain.market.simulated import SimulatedProvider
    from backend.domain.market.upstox_provider import UpstoxProvider

    for key, factory in (("simulated", SimulatedProvider), ("csv", CsvProvider), ("upstox", UpstoxProvider)):
        _REGISTRY.setdefault(key, factory)


def unique(symbols: Iterable[str]) -> list[str]:
    """Symbols de-duplicated, order kept (batch calls must not ask twice for one symbol)."""
    return list(dict.fromkeys(symbols))
