"""Value types shared by market-data providers, the live feed and its subscribers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Candle:
    ts: datetime  # bar open time, timezone-aware UTC
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    oi: int = 0


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str  # trading symbol, e.g. "RELIANCE"
    ltp: Decimal
    bid: Decimal
    ask: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal  # previous session close
    volume: int
    ts: datetime
    instrument_key: str = ""
    oi: int = 0


@dataclass(frozen=True, slots=True)
class Tick:
    """One live update. ``volume`` is the traded quantity in this tick (not cumulative)."""

    symbol: str
    ltp: Decimal
    bid: Decimal
    ask: Decimal
    volume: int
    ts: datetime
    cum_volume: int = 0
    extra: dict = field(default_factory=dict, hash=False, compare=False)
