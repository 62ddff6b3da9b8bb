"""Per-symbol market state kept by the alert engines (only as much as the symbol's rules need).

Everything here is updated in O(1) amortised per tick:

* a time-windowed price history with one monotone pointer per ``pct_change`` window;
* a volume deque with one running sum per ``volume_spike`` window;
* per timeframe, tick-aggregated bars (close = last tick price of the bar) and, when a bar completes,
  incremental indicators shared by every rule on the same (symbol, timeframe, period): Wilder RSI from
  running average gain/loss, SMAs from exact (Decimal) rolling sums over the bar closes.

Derived values (running sums, pointers) are rebuilt from the persisted raw state on ``load``; the
RSI averages cannot be (they depend on the whole history), so they are persisted as floats, which
JSON round-trips exactly.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import Any

from backend.domain.market.types import Tick


class RsiState:
    """Wilder RSI over bar closes, updated once per completed bar.

    Same recurrence as ``backend.domain.indicators.rsi``: the first ``period`` gains/losses seed the
    averages with their mean, then ``avg = alpha * x + (1 - alpha) * avg`` with ``alpha = 1/period``.
    """

    __slots__ = ("period", "prev", "n", "ag", "al", "value")

    def __init__(self, period: int, prev: float | None = None) -> None:
        self.period = period
        self.prev = prev  # previous close (float) or None before the first one
        self.n = 0  # diffs seen, capped at period (while < period, ag/al hold sums)
        self.ag = 0.0
        self.al = 0.0
        self.value: float | None = None

    def update(self, close: float) -> None:
        prev, self.prev = self.prev, close
        if prev is None:
            return
        d = close - prev
        gain = d if d > 0 else 0.0
        loss = -d if d < 0 else 0.0
        p = self.period
        if self.n < p:
            self.ag += gain
            self.al += loss
            self.n += 1
            if self.n < p:
                return
            self.ag /= p
            self.al /= p
        else:
            alpha = 1.0 / p
            self.ag = alpha * gain + (1.0 - alpha) * self.ag
            self.al = alpha * loss + (1.0 - alpha) * self.al
        g, lo = self.ag, self.al
        if lo == 0.0:
            self.value = 50.0 if g == 0.0 else 100.0
        else:
            self.value = 100.0 - 100.0 / (1.0 + g / lo)

    def to_dict(self) -> dict[str, Any]:
        return {"prev": self.prev, "n": self.n, "ag": self.ag, "al": self.al, "value": self.value}

    @classmethod
    def from_dict(cls, period: int, data: dict[str, Any]) -> RsiState:
        st = cls(period, data.get("prev"))
        st.n = int(data.get("n", 0))
        st.ag = float(data.get("ag", 0.0))
        st.al = float(data.get("al", 0.0))
        st.value = data.get("value")
        return st


class BarSeries:
    """Bars of one timeframe for one symbol, aligned to the Unix epoch (``floor(ts / timeframe)``).

    A bar completes when the first tick of a later bar arrives (bars without ticks are skipped). On
    that tick ``just_closed`` is true and the indicators include the completed bar's close.
    """

    __slots__ = ("tf", "bar", "close", "last_close", "just_closed", "closes", "sma_sums", "rsi")

    def __init__(self, tf: int) -> None:
        self.tf = tf
        self.bar: int | None = None  # index of the bar in progress
        self.close: Decimal | None = None  # its close so far (last tick price)
        self.last_close: Decimal | None = None  # close of the last completed bar
        self.just_closed = False
        self.closes: deque[Decimal] = deque(maxlen=0)  # last completed closes (for SMAs)
        self.sma_sums: dict[int, Decimal] = {}  # period -> exact sum of the last `period` closes
        self.rsi: dict[int, RsiState] = {}

    def require_sma(self, period: int) -> None:
        if period > (self.closes.maxlen or 0):
            self.closes = deque(self.closes, maxlen=period)
        if period not in self.sma_sums:
            self.sma_sums[period] = sum(list(self.closes)[-period:], Decimal(0))

    def require_rsi(self, period: int) -> None:
        if period not in self.rsi:
            prev = float(self.last_close) if self.last_close is not None else None
            self.rsi[period] = RsiState(period, prev)

    def observe(self, price: Decimal, t: float) -> None:
        bar = int(t // self.tf)
        if self.bar is None or bar <= self.bar:
            # First tick, or same bar (late ticks count toward the bar in progress).
            if self.bar is None:
                self.bar = bar
            self.close = price
            self.just_closed = False
            return
        self._complete(self.close)
        self.bar, self.close = bar, price
        self.just_closed = True

    def _complete(self, close: Decimal) -> None:
        self.last_close = close
        closes = self.closes
        if closes.maxlen:
            n = len(closes)
            for period in self.sma_sums:
                # Before the append, closes[-period] is the close leaving this period's window.
                out = closes[-period] if n >= period else 0
                self.sma_sums[period] += close - out
            closes.append(close)
        if self.rsi:
            fc = float(close)
            for st in self.rsi.values():
                st.update(fc)

    def sma(self, period: int) -> Decimal | None:
        """Exact SMA of the last ``period`` completed closes (None while warming up)."""
        if len(self.closes) < period:
            return None
        return self.sma_sums[period] / period

    def to_dict(self) -> dict[str, Any]:
        return {
            "bar": self.bar,
            "close": str(self.close) if self.close is not None else None,
            "last_close": str(self.last_close) if self.last_close is not None else None,
            "just_closed": self.just_closed,
            "closes": [str(c) for c in self.closes],
            "closes_maxlen": self.closes.maxlen,
            "sma": sorted(self.sma_sums),
            "rsi": {str(p): st.to_dict() for p, st in self.rsi.items()},
        }

    @classmethod
    def from_dict(cls, tf: int, data: dict[str, Any]) -> BarSeries:
        bs = cls(tf)
        bs.bar = data.get("bar")
        bs.close = _opt_dec(data.get("close"))
        bs.last_close = _opt_dec(data.get("last_close"))
        bs.just_closed = bool(data.get("just_closed", False))
        bs.closes = deque((Decimal(c) for c in data.get("closes", [])), maxlen=data.get("closes_maxlen") or 0)
        for period in data.get("sma", []):
            bs.require_sma(int(period))
        bs.rsi = {int(p): RsiState.from_dict(int(p), st) for p, st in data.get("rsi", {}).items()}
        return bs


class SymbolSeries:
    """Last price, time-windowed prices, volumes and per-timeframe bars of one symbol."""

    __slots__ = (
        "last_price",
        "last_t",
        "window_s",
        "_ts",
        "_px",
        "_base",
        "_ptr",
        "volumes",
        "_vsums",
        "bars",
    )

    def __init__(self) -> None:
        self.last_price: Decimal | None = None
        self.last_t: float | None = None  # latest tick time seen (epoch s); the windows end here
        self.window_s = 0
        self._ts: list[float] = []  # epoch seconds, non-decreasing
        self._px: list[Decimal] = []
        self._base = 0  # absolute index of _ts[0] (entries are dropped from the front in chunks)
        self._ptr: dict[int, int] = {}  # window -> absolute index of its oldest in-window entry
        self.volumes: deque[int] = deque(maxlen=0)
        self._vsums: dict[int, int] = {}  # window -> sum of the `window` volumes before the last tick
        self.bars: dict[int, BarSeries] = {}

    # -- what the rules need (grows, never shrinks) ----------------------------------------------

    def require_window(self, window_s: int) -> None:
        if window_s <= 0:
            return
        self.window_s = max(self.window_s, window_s)
        if window_s not in self._ptr:
            self._ptr[window_s] = self._base

    def require_volumes(self, window: int) -> None:
        if window + 1 > (self.volumes.maxlen or 0):
            self.volumes = deque(self.volumes, maxlen=window + 1)
        if window not in self._vsums:
            self._vsums[window] = sum(list(self.volumes)[-window - 1 : -1])

    def bar_series(self, tf: int) -> BarSeries:
        bs = self.bars.get(tf)
        if bs is None:
            bs = self.bars[tf] = BarSeries(tf)
        return bs

    # -- per tick ---------------------------------------------------------------------------------

    def observe(self, tick: Tick) -> None:
        price = tick.ltp
        self.last_price = price
        if self.window_s or self.bars:
            t = tick.ts.timestamp()
            if self.last_t is not None and t < self.last_t:
                t = self.last_t  # out-of-order tick: time never goes backwards
            self.last_t = t
            if self.window_s:
                self._ts.append(t)
                self._px.append(price)
                self._trim(t)
            for bs in self.bars.values():
                bs.observe(price, t)
        vols = self.volumes
        if vols.maxlen:
            n = len(vols)
            if n:
                # The previous "last tick" joins each window; the oldest one leaves it.
                last = vols[-1]
                for w in self._vsums:
                    self._vsums[w] += last - (vols[-w - 1] if n > w else 0)
            vols.append(tick.volume)

    def _trim(self, t: float) -> None:
        ts, base = self._ts, self._base
        end = base + len(ts)
        for w, p in self._ptr.items():
            cutoff = t - w
            while p < end and ts[p - base] < cutoff:
                p += 1
            self._ptr[w] = p
        # Everything before the longest window's pointer is dead; drop it in chunks (amortised O(1)).
        head = self._ptr[self.window_s] - base
        if head > 1024 and head * 2 > len(ts):
            del ts[:head], self._px[:head]
            self._base += head

    def reference_price(self, window_s: int) -> Decimal | None:
        """Oldest price inside the trailing ``window_s`` ending at the latest tick (None: no history)."""
        p = self._ptr.get(window_s)
        if p is None:
            return None
        i = p - self._base
        return self._px[i] if i < len(self._px) else None

    def volume_average_sum(self, window: int) -> int | None:
        """Sum of the ``window`` tick volumes before the latest tick (None while fewer are known)."""
        if len(self.volumes) < window + 1:
            return None
        return self._vsums[window]

    # -- persistence -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        # Only the part of the history some window still covers.
        h = min(self._ptr.values(), default=self._base + len(self._ts)) - self._base
        return {
            "last_price": str(self.last_price) if self.last_price is not None else None,
            "last_t": self.last_t,
            "window_s": self.window_s,
            "windows": sorted(self._ptr),
            "ts": self._ts[h:],
            "px": [str(p) for p in self._px[h:]],
            "volumes": list(self.volumes),
            "volumes_maxlen": self.volumes.maxlen,
            "volume_windows": sorted(self._vsums),
            "bars": {str(tf): bs.to_dict() for tf, bs in self.bars.items()},
        }

    def load(self, data: dict[str, Any]) -> None:
        self.last_price = _opt_dec(data.get("last_price"))
        self.last_t = data.get("last_t")
        self._ts = [float(t) for t in data.get("ts", [])]
        self._px = [Decimal(p) for p in data.get("px", [])]
        self._base = 0
        self._ptr = {}
        self.window_s = 0
        for w in data.get("windows", []):
            self.require_window(int(w))
        self.require_window(int(data.get("window_s", 0)))
        if self.last_t is not None and self._ts:
            self._trim(self.last_t)
        maxlen = int(data.get("volumes_maxlen") or 0)
        self.volumes = deque((int(v) for v in data.get("volumes", [])), maxlen=maxlen)
        self._vsums = {}
        for w in data.get("volume_windows", []):
            self.require_volumes(int(w))
        self.bars = {int(tf): BarSeries.from_dict(int(tf), b) for tf, b in data.get("bars", {}).items()}


def _opt_dec(raw: Any) -> Decimal | None:
    return Decimal(raw) if raw is not None else None
