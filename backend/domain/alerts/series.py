"""Per-symbol market history kept by the alert engines (only as much as the symbol's rules need)."""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np

from backend.domain.indicators import rsi as _rsi
from backend.domain.indicators import sma as _sma
from backend.domain.market.types import Tick


class SymbolSeries:
    """Last price, a time-windowed price history, a price deque (indicators) and a volume deque.

    Indicator values are cached for the current tick so many rules on one symbol share the work.
    """

    __slots__ = (
        "last_price",
        "window_s",
        "_ts",
        "_px",
        "_head",
        "prices",
        "volumes",
        "_cache",
        "_np",
    )

    def __init__(self) -> None:
        self.last_price: Decimal | None = None
        self.window_s = 0
        self._ts: list[float] = []  # epoch seconds, non-decreasing
        self._px: list[Decimal] = []
        self._head = 0  # entries before _head have left the window (compacted lazily)
        self.prices: deque[float] = deque(maxlen=0)
        self.volumes: deque[int] = deque(maxlen=0)
        self._cache: dict[tuple, float | None] = {}
        self._np: np.ndarray | None = None

    def require(self, window_s: int, n_prices: int, n_volumes: int) -> None:
        """Grow retention so a newly added rule has the history it needs (never shrinks)."""
        self.window_s = max(self.window_s, window_s)
        if n_prices > (self.prices.maxlen or 0):
            self.prices = deque(self.prices, maxlen=n_prices)
        if n_volumes > (self.volumes.maxlen or 0):
            self.volumes = deque(self.volumes, maxlen=n_volumes)

    def observe(self, tick: Tick) -> None:
        price = tick.ltp
        self.last_price = price
        if self.window_s:
            t = tick.ts.timestamp()
            if self._ts and t < self._ts[-1]:
                t = self._ts[-1]  # out-of-order tick: keep the list sorted for bisect
            self._ts.append(t)
            self._px.append(price)
            cut = bisect_left(self._ts, t - self.window_s, self._head)
            self._head = cut
            if cut > 1024 and cut * 2 > len(self._ts):
                del self._ts[:cut]
                del self._px[:cut]
                self._head = 0
        if self.prices.maxlen:
            self.prices.append(float(price))
        if self.volumes.maxlen:
            self.volumes.append(tick.volume)
        if self._cache:
            self._cache = {}
        self._np = None

    def reference_price(self, now: datetime, window_s: int) -> Decimal | None:
        """Oldest price at or after ``now - window_s`` (None without history)."""
        if len(self._ts) <= self._head:
            return None
        i = bisect_left(self._ts, now.timestamp() - window_s, self._head)
        return self._px[i] if i < len(self._px) else None

    def _array(self) -> np.ndarray:
        if self._np is None:
            self._np = np.fromiter(self.prices, dtype=np.float64, count=len(self.prices))
        return self._np

    def rsi(self, period: int, lookback: int) -> float | None:
        key = ("rsi", period, lookback)
        if key not in self._cache:
            arr = self._array()
            self._cache[key] = _last_value(_rsi(arr[-lookback:], period)) if arr.size > period else None
        return self._cache[key]

    def sma(self, period: int, lookback: int) -> float | None:
        key = ("sma", period)
        if key not in self._cache:
            arr = self._array()
            self._cache[key] = _last_value(_sma(arr[-period:], period)) if arr.size >= period else None
        return self._cache[key]

    # -- persistence -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        h = self._head
        return {
            "last_price": str(self.last_price) if self.last_price is not None else None,
            "window_s": self.window_s,
            "ts": self._ts[h:],
            "px": [str(p) for p in self._px[h:]],
            "prices": list(self.prices),
            "prices_maxlen": self.prices.maxlen,
            "volumes": list(self.volumes),
            "volumes_maxlen": self.volumes.maxlen,
        }

    def load(self, data: dict[str, Any]) -> None:
        lp = data.get("last_price")
        self.last_price = Decimal(lp) if lp is not None else None
        self.require(int(data.get("window_s", 0)), int(data.get("prices_maxlen") or 0), 0)
        self.require(0, 0, int(data.get("volumes_maxlen") or 0))
        self._ts = [float(t) for t in data.get("ts", [])]
        self._px = [Decimal(p) for p in data.get("px", [])]
        self._head = 0
        self.prices = deque((float(p) for p in data.get("prices", [])), maxlen=self.prices.maxlen)
        self.volumes = deque((int(v) for v in data.get("volumes", [])), maxlen=self.volumes.maxlen)
        self._cache = {}
        self._np = None


def _last_value(arr: np.ndarray) -> float | None:
    v = float(arr[-1])
    return None if v != v else v  # NaN while warming up
