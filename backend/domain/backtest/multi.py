"""Multi-asset portfolio backtests: several symbols, one cash account, on the single-asset engine's
conventions (``backend.domain.backtest.engine``; docs/backtesting.md, "Multi-asset portfolios").

* **Alignment.** Every symbol's bars go through the one loader (:func:`load_ohlcv`: parsed and
  validated per symbol). Series with timestamps are aligned on the sorted **union** of their
  timestamps; without timestamps all series must have the same length (aligned by index). A symbol
  with no bar at a timestamp is *missing* there: it is valued at its last close (forward-filled; a
  holding cannot exist before its first bar) and **does not trade** on that bar.
* **Fills** as the single-asset engine: decisions on a bar's close, orders at the **next bar's
  open** (of that symbol), slippage ``s`` makes buys ``open*(1+s)`` and sells ``open*(1-s)``; an
  order decided on the last bar never fills. Each order pays the same charge model (flat rate or
  ``cost(side, qty, price)``, e.g. the paper broker's schedule) through the engine's own cost model:
  a cost function that takes a fourth argument gets the fill bar's date, so each order pays the
  rates in force on its own date, as in the engine; a reversal is two orders (close, then open).
* **One cash account**, no leverage: an order that increases a position may use at most the buying
  power ``equity - gross exposure`` (marked at the fill bar's open): for long-only books that is the
  free cash. Whole shares unless ``fractional``.
* **Target weights** (``weights`` + ``rebalance``, or a dated ``schedule``): at each rebalance the
  target quantity of a symbol is ``trunc(w * E / open)`` with ``E`` the equity marked at the fill
  bar's open. Orders that reduce a position go first (they free cash), then orders that increase
  one, in symbol order, each cut to what the buying power affords (with charges and weights summing
  to 1 the last buy can lose a share or so). A symbol missing on the fill bar keeps its holding
  until the next rebalance. ``sum(|w|) <= 1``; negative weights need ``long_only=False``.
* **Signals** (``strategies`` or ``targets`` per symbol): each symbol's strategy runs on that
  symbol's own bars and its target changes fill at that symbol's next bar's open, exactly as the
  engine. Sizing: exits first; then each new entry gets ``min(E / k, buying power)`` where ``E`` is
  the equity at the open after the exits and ``k`` the number of symbols holding a position plus
  those entering on that bar (an equal slice of equity per open signal); with ``sizing`` a fixed
  fraction ``f`` of ``E`` instead. Open positions are never resized. A symbol that never trades
  leaves the other's result identical to the single-asset engine's, trade for trade.
* **Trades** are FIFO lots per symbol (a buy opens a lot; a sell closes the oldest lots first,
  splitting one if needed; charges split pro rata by quantity), with the engine's ``pnl`` and
  ``return_pct`` formulas. Cash accounting is the engine's: equity ``= settled cash + sum(size *
  (close - entry))``; ``cash = settled cash - sum(size * entry)``, so ``cash + sum(qty * close) ==
  equity`` on every bar.
* **Metrics**: :func:`compute_metrics` on the portfolio equity (periods per year from the union's
  bar spacing), ``exposure`` = share of bars holding anything, ``buy_and_hold_return`` = the mean of
  the symbols' own buy-and-hold returns (equal weights, no rebalancing). Stop-loss and take-profit
  are not supported here (422).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from backend.domain import metrics as m
from backend.domain.backtest.annualise import Annualisation, infer
from backend.domain.backtest.data import load_ohlcv
from backend.domain.backtest.engine import (
    BacktestConfig,
    Trade,
    _Costs,
    _target_from_strategy,
    compute_metrics,
)
from backend.domain.backtest.timestamps import parse_times
from backend.domain.errors import ValidationFailed
from backend.domain.strategies.base import SignalStrategy, _ffill_zero

REBALANCE_CHOICES = ("once", "weekly", "monthly", "quarterly")
_IST_OFFSET = np.timedelta64(330, "m")  # NSE periods (weeks, months) end on IST dates
_WEIGHT_TOL = 1e-9
_SPACING_RATIO = 1.5  # series whose bar intervals differ more than this are not comparable


@dataclass
class PortfolioTrade(Trade):
    symbol: str = ""


@dataclass
class Fill:
    symbol: str
    bar: int
    side: str  # "buy" | "sell"
    qty: float
    price: float
    commission: float
    reason: str  # "rebalance" | "signal"
    time: Any = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["time"] = None if self.time is None else str(self.time)
        return d


@dataclass
class PortfolioResult:
    symbols: list[str]
    trades: list[PortfolioTrade]  # closed lots, in the order they closed
    open_trades: list[PortfolioTrade]
    fills: list[Fill]
    equity: np.ndarray
    drawdown: np.ndarray
    cash: np.ndarray
    positions: np.ndarray  # (symbols, bars): signed units held at each bar's close
    close: np.ndarray  # (symbols, bars): closes forward-filled for valuation (NaN before the first bar)
    metrics: dict[str, float]
    per_symbol: dict[str, dict[str, float]]
    times: np.ndarray | None = None
    config: BacktestConfig = field(default_factory=BacktestConfig)
    annualisation: Annualisation | None = None
    mode: str = "weights"

    def to_dict(self, include_curves: bool = True) -> dict[str, Any]:
        def clean(x: float | None) -> float | None:
            return None if x is None or not math.isfinite(x) else float(x)

        out: dict[str, Any] = {
            "mode": self.mode,
            "symbols": list(self.symbols),
            "metrics": {k: clean(v) for k, v in self.metrics.items()},
            "per_symbol": {s: {k: clean(v) for k, v in d.items()} for s, d in self.per_symbol.items()},
            "trades": [t.to_dict() for t in self.trades],
            "open_trades": [t.to_dict() for t in self.open_trades],
            "num_fills": len(self.fills),
            "annualisation": self.annualisation.to_dict() if self.annualisation else None,
        }
        if include_curves:
            out["equity"] = [clean(v) for v in self.equity.tolist()]
            out["cash"] = [clean(v) for v in self.cash.tolist()]
            out["drawdown"] = [clean(v) for v in self.drawdown.tolist()]
            out["times"] = [str(t) for t in self.times] if self.times is not None else None
        return out


# --------------------------------------------------------------------------- alignment


@dataclass
class _Aligned:
    symbols: list[str]
    bars: list[dict[str, np.ndarray]]  # each symbol's own (validated) bars
    index: list[np.ndarray]  # own bar i -> union bar index[i]
    times: np.ndarray | None  # union timestamps
    present: np.ndarray  # (S, n) bool
    open: np.ndarray  # (S, n), NaN where missing
    close_ff: np.ndarray  # (S, n) closes forward-filled, NaN before the first bar


def align(bars: Mapping[str, Mapping[str, Any]], *, validate: bool = True) -> _Aligned:
    """Load every symbol's bars and align them on the union of their timestamps (see module doc)."""
    if not bars:
        raise ValidationFailed("no symbols given", details={"bars": ["at least one symbol"]})
    symbols = [str(s) for s in bars]
    if len(set(symbols)) != len(symbols):
        raise ValidationFailed("duplicate symbols", details={"bars": ["symbols must be unique"]})
    loaded: list[dict[str, np.ndarray]] = []
    errors: dict[str, Any] = {}
    codes: set[str] = set()
    for sym, data in bars.items():
        if data is None or not len(data) or all(np.asarray(v).size == 0 for v in data.values()):
            errors[str(sym)] = ["no bars"]
            continue
        try:
            loaded.append(load_ohlcv(data, validate=validate))
        except ValidationFailed as exc:
            errors[str(sym)] = exc.details or [exc.message]
            codes.add(exc.code)
    if errors:
        # keep a specific code (BAD_TIMESTAMP) when every failing series shares it
        code = codes.pop() if len(codes) == 1 else "VALIDATION_ERROR"
        raise ValidationFailed(f"bad bars for {', '.join(errors)}", details={"bars": errors}, code=code)
    timed = [("time" in b) for b in loaded]
    if any(timed) and not all(timed):
        missing = [s for s, t in zip(symbols, timed, strict=True) if not t]
        raise ValidationFailed(
            "misaligned series: some have timestamps, some do not",
            details={"bars": {s: ["no timestamps (the other series have them)"] for s in missing}},
        )
    if not all(timed):
        n = loaded[0]["close"].size
        bad = {
            s: [f"{b['close'].size} bars, {symbols[0]} has {n}"]
            for s, b in zip(symbols, loaded, strict=True)
            if b["close"].size != n
        }
        if bad:
            raise ValidationFailed(
                "misaligned series: without timestamps every series needs the same number of bars",
                details={"bars": bad},
            )
        index = [np.arange(n) for _ in loaded]
        union = None
    else:
        _check_spacing(symbols, loaded)
        first = loaded[0]["time"]
        if all(np.array_equal(b["time"], first) for b in loaded[1:]):
            union = first  # the common case: identical timestamps, nothing to merge
        else:
            # each series is strictly increasing: a stable sort of the concatenation merges runs
            allt = np.sort(np.concatenate([b["time"] for b in loaded]), kind="stable")
            union = allt[np.concatenate(([True], allt[1:] != allt[:-1]))]
        index = [np.searchsorted(union, b["time"]) for b in loaded]
        n = union.size
    s_count = len(loaded)
    present = np.zeros((s_count, n), dtype=bool)
    opens = np.full((s_count, n), np.nan)
    closes = np.full((s_count, n), np.nan)
    for k, (b, idx) in enumerate(zip(loaded, index, strict=True)):
        present[k, idx] = True
        opens[k, idx] = b["open"]
        closes[k, idx] = b["close"]
    # forward fill: each bar takes the close of the last bar at or before it
    last = np.where(present, np.arange(n), -1)
    last = np.maximum.accumulate(last, axis=1)
    close_ff = np.where(last >= 0, np.take_along_axis(closes, np.maximum(last, 0), axis=1), np.nan)
    return _Aligned(symbols, loaded, index, union, present, opens, close_ff)


def _check_spacing(symbols: list[str], loaded: list[dict[str, np.ndarray]]) -> None:
    spacing = []
    for b in loaded:
        gaps = np.diff(b["time"].astype("datetime64[s]").astype(np.int64))
        # the smallest gap is the bar interval even when many bars are missing
        spacing.append(float(gaps.min()) if gaps.size else float("nan"))
    ref = spacing[0]
    bad = {
        s: [f"bar interval {sp:g}s differs from {symbols[0]}'s {ref:g}s"]
        for s, sp in zip(symbols[1:], spacing[1:], strict=True)
        if math.isfinite(sp) and math.isfinite(ref) and max(sp, ref) > _SPACING_RATIO * min(sp, ref)
    }
    if bad:
        raise ValidationFailed("misaligned series: different bar intervals", details={"bars": bad})


# --------------------------------------------------------------------------- ledger


class _Ledger:
    """One cash account with FIFO lots per symbol, on the engine's cash convention."""

    def __init__(self, al: _Aligned, cash: float, costs: _Costs, slippage: float) -> None:
        self.al = al
        self.settled = float(cash)  # engine's "cash": moves by charges and realised P&L only
        self.lots: list[deque[list[float]]] = [deque() for _ in al.symbols]  # [size, entry, bar, comm]
        self.costs = costs
        self.slip = slippage
        self.trades: list[PortfolioTrade] = []
        self.fills: list[Fill] = []
        # per-symbol units and cost basis sum(size * entry), refreshed when the symbol's lots change
        self.units = [0.0] * len(al.symbols)
        self.basis = [0.0] * len(al.symbols)

    def _refresh(self, s: int) -> None:
        lots = self.lots[s]
        self.units[s] = float(sum(lot[0] for lot in lots))
        self.basis[s] = float(sum(lot[0] * lot[1] for lot in lots))

    def position(self, s: int) -> float:
        return self.units[s]

    def mark(self, s: int, j: int) -> float:
        """Price of symbol ``s`` at bar ``j``'s open (its last close if it has no bar there)."""
        return float(self.al.open[s, j]) if self.al.present[s, j] else float(self.al.close_ff[s, j])

    def equity_and_gross(self, j: int) -> tuple[float, float]:
        eq, gross = self.settled, 0.0
        for s, lots in enumerate(self.lots):
            if lots:
                px = self.mark(s, j)
                if len(lots) == 1:  # the engine's expression, bit for bit
                    eq += lots[0][0] * (px - lots[0][1])
                else:
                    eq += self.units[s] * px - self.basis[s]
                gross += abs(self.units[s]) * px  # a symbol's lots all have one sign
        return eq, gross

    def price(self, side: str, j: int, s: int) -> float:
        o = float(self.al.open[s, j])
        return o * (1 + self.slip) if side == "buy" else o * (1 - self.slip)

    def open(self, s: int, j: int, size: float, px: float, reason: str) -> None:
        side = "buy" if size > 0 else "sell"
        comm = self.costs.cost(side, size, px, j)
        self.settled -= comm
        self.lots[s].append([size, px, float(j), comm])
        self._refresh(s)
        self.fills.append(Fill(self.al.symbols[s], j, side, abs(size), px, comm, reason))

    def reduce(self, s: int, j: int, qty: float, px: float, reason: str) -> None:
        """Close ``qty`` units (> 0) of the position of ``s``, oldest lots first."""
        lots = self.lots[s]
        side = "sell" if lots[0][0] > 0 else "buy"
        comm = self.costs.cost(side, qty, px, j)
        self.fills.append(Fill(self.al.symbols[s], j, side, qty, px, comm, reason))
        left, comm_left = qty, comm
        while left > 0 and lots:
            lot = lots[0]
            size, entry, entry_bar, entry_comm = lot
            piece = min(abs(size), left)
            last_piece = piece >= left
            exit_comm = comm_left if last_piece else comm * (piece / qty)
            if piece >= abs(size):
                lots.popleft()
                part_comm, signed = entry_comm, size
            else:  # split the lot: the closed part takes its share of the entry charge
                part_comm = entry_comm * (piece / abs(size))
                signed = math.copysign(piece, size)
                lot[0] = size - signed
                lot[3] = entry_comm - part_comm
            gross = signed * (px - entry)
            self.settled += gross - exit_comm
            total_comm = part_comm + exit_comm
            ret = math.copysign(1.0, signed) * (px / entry - 1.0) - total_comm / (abs(signed) * entry)
            self.trades.append(
                PortfolioTrade(
                    int(entry_bar),
                    j,
                    float(entry),
                    float(px),
                    float(signed),
                    float(gross - total_comm),
                    float(ret),
                    float(total_comm),
                    reason,
                    symbol=self.al.symbols[s],
                )
            )
            left -= piece
            comm_left -= exit_comm
        self._refresh(s)

    def close_all(self, s: int, j: int, reason: str) -> None:
        q = self.position(s)
        if q != 0.0:
            self.reduce(s, j, abs(q), self.price("sell" if q > 0 else "buy", j, s), reason)

    def increase(self, s: int, j: int, qty: float, direction: float, budget: float, reason: str) -> None:
        """Add up to ``qty`` units in ``direction``, cut to what ``budget`` and the buying power afford."""
        side = "buy" if direction > 0 else "sell"
        px = self.price(side, j, s)
        eq, gross = self.equity_and_gross(j)
        affordable = self.costs.size(side, min(budget, eq - gross), px, j)
        units = min(qty, affordable)
        if units > 0:
            self.open(s, j, units * direction, px, reason)

    def snapshot(self) -> tuple[float, list[tuple[float, float, float | None]]]:
        """(settled, per symbol (units, basis, the entry price when it is a single lot))."""
        return self.settled, [
            (self.units[s], self.basis[s], lots[0][1] if len(lots) == 1 else None)
            for s, lots in enumerate(self.lots)
        ]


# --------------------------------------------------------------------------- inputs


def _check_config(cfg: BacktestConfig) -> None:
    cfg.validate()
    errors = {
        name: ["not supported for portfolio backtests"]
        for name in ("stop_loss", "take_profit")
        if getattr(cfg, name) is not None
    }
    if errors:
        raise ValidationFailed("stop-loss / take-profit are single-asset only", details=errors)


def validate_weights(
    symbols: Sequence[str], weights: Mapping[str, Any], *, allow_short: bool, field_name: str = "weights"
) -> dict[str, float]:
    """Check one set of target weights; errors name ``field_name`` and the symbol."""
    known = set(symbols)
    errors: dict[str, list[str]] = {}
    out: dict[str, float] = {}
    for sym, w in weights.items():
        if sym not in known:
            errors[str(sym)] = [f"unknown symbol (not one of {', '.join(symbols)})"]
            continue
        try:
            v = float(w)
        except (TypeError, ValueError):
            errors[str(sym)] = ["must be a number"]
            continue
        if isinstance(w, bool) or not math.isfinite(v):
            errors[str(sym)] = ["must be a finite number"]
        elif v < 0 and not allow_short:
            errors[str(sym)] = ["negative weight needs shorting (long_only=false)"]
        else:
            out[str(sym)] = v
    if errors:
        raise ValidationFailed(f"invalid {field_name}", details={field_name: errors})
    gross = sum(abs(v) for v in out.values())
    if gross > 1 + _WEIGHT_TOL:
        label = "absolute weights" if any(v < 0 for v in out.values()) else "weights"
        raise ValidationFailed(
            f"{label} sum to {gross:g}, more than 1 (no leverage)",
            details={field_name: [f"{label} must sum to at most 1 (got {gross:g})"]},
        )
    return out


def _decision_bars(times: np.ndarray | None, n: int, rebalance: str | int, market: str) -> np.ndarray:
    """Bars whose close decides a rebalance (filled at the next bar's open)."""
    if isinstance(rebalance, bool) or not isinstance(rebalance, (str, int)):
        raise ValidationFailed("bad rebalance", details={"rebalance": [_REBALANCE_HELP]})
    if isinstance(rebalance, int):
        if rebalance < 1:
            raise ValidationFailed("bad rebalance", details={"rebalance": ["every N bars needs N >= 1"]})
        return np.arange(0, n, rebalance)
    if rebalance not in REBALANCE_CHOICES:
        raise ValidationFailed("bad rebalance", details={"rebalance": [_REBALANCE_HELP]})
    if rebalance == "once":
        return np.array([0])
    if times is None:
        raise ValidationFailed(
            f"{rebalance} rebalancing needs timestamps", details={"rebalance": ["needs bars with timestamps"]}
        )
    t = np.asarray(times).astype("datetime64[m]")
    if market in ("auto", "nse"):
        t = t + _IST_OFFSET
    days = t.astype("datetime64[D]").astype(np.int64)
    if rebalance == "weekly":
        period = (days + 3) // 7  # weeks from Monday (1970-01-01 was a Thursday)
    else:
        months = t.astype("datetime64[M]").astype(np.int64)
        period = months if rebalance == "monthly" else months // 3
    # the last bar of each period decides; its order fills at the first open of the next period
    ends = np.flatnonzero(period[1:] != period[:-1])
    return np.unique(np.concatenate(([0], ends)))


_REBALANCE_HELP = f"one of {', '.join(REBALANCE_CHOICES)} or a number of bars >= 1"


def _schedule_rows(
    al: _Aligned, schedule: Sequence[tuple[Any, Mapping[str, Any]]], allow_short: bool
) -> dict[int, dict[str, float]]:
    """Dated target weights -> {decision bar: weights}; a row dated t is decided on the first bar at or
    after t (its close), so it fills on the next bar's open. Rows must be in time order."""
    if al.times is None:
        raise ValidationFailed(
            "a dated schedule needs timestamps", details={"schedule": ["bars have no times"]}
        )
    if not schedule:
        raise ValidationFailed("empty schedule", details={"schedule": ["at least one row"]})
    raw = np.asarray([row[0] for row in schedule])
    try:
        when = raw if raw.dtype.kind == "M" else parse_times(raw.astype(str), "schedule.time")
    except ValidationFailed as exc:
        raise ValidationFailed(exc.message, details={"schedule": {"time": exc.details}}) from None
    when = when.astype(al.times.dtype)
    out: dict[int, dict[str, float]] = {}
    errors: dict[int, Any] = {}
    for k, (t, (_, w)) in enumerate(zip(when, schedule, strict=True)):
        if k and not t > when[k - 1]:
            errors[k] = {"time": ["not after the previous row"]}
            continue
        bar = int(np.searchsorted(al.times, t, side="left"))
        if bar >= al.times.size:
            errors[k] = {"time": [f"after the last bar ({al.times[-1]})"]}
            continue
        try:
            out[bar] = validate_weights(
                al.symbols, w, allow_short=allow_short
            )  # a later row on the same bar wins
        except ValidationFailed as exc:
            errors[k] = exc.details
    if errors:
        raise ValidationFailed("invalid schedule", details={"schedule": errors})
    return out


# --------------------------------------------------------------------------- runner


def run_portfolio(
    bars: Mapping[str, Mapping[str, Any]],
    config: BacktestConfig | None = None,
    *,
    weights: Mapping[str, float] | None = None,
    rebalance: str | int = "once",
    schedule: Sequence[tuple[Any, Mapping[str, float]]] | None = None,
    strategies: Mapping[str, SignalStrategy] | None = None,
    targets: Mapping[str, Any] | None = None,
    sizing: Mapping[str, float] | None = None,
    validate: bool = True,
    **overrides: Any,
) -> PortfolioResult:
    """Backtest a portfolio of ``bars`` (symbol -> OHLCV mapping, as :func:`run_backtest` takes).

    Give either target weights (``weights`` with ``rebalance`` = ``"once"``, ``"weekly"``,
    ``"monthly"``, ``"quarterly"`` or every N bars; or ``schedule`` = ``[(time, {symbol: w}), ...]``)
    or signals (``strategies`` symbol -> signal strategy, or ``targets`` symbol -> +1/-1/0/NaN per
    own bar; symbols without one never trade; optional ``sizing`` symbol -> fraction of equity per
    entry). Conventions in the module docstring and docs/backtesting.md.
    """
    cfg = config or BacktestConfig()
    if overrides:
        cfg = BacktestConfig(**{**asdict(cfg), **overrides})
    _check_config(cfg)
    weight_mode = weights is not None or schedule is not None
    signal_mode = strategies is not None or targets is not None
    if weight_mode == signal_mode:
        raise ValidationFailed(
            "give either target weights (weights or schedule) or signals (strategies or targets)",
            details={"mode": ["exactly one of weights/schedule or strategies/targets"]},
        )
    if weights is not None and schedule is not None:
        raise ValidationFailed(
            "weights and schedule are exclusive", details={"schedule": ["give weights or schedule"]}
        )
    al = align(bars, validate=validate)
    n = al.present.shape[1]
    ann = infer(al.times, cfg.market, cfg.periods_per_year)
    # the engine's cost model with the union bars' times: a cost function taking a date is given
    # each fill bar's day, so every order pays the rates in force on its own date
    ledger = _Ledger(al, cfg.cash, _Costs(cfg.commission, cfg.fractional, al.times), cfg.slippage)
    allow_short = not cfg.long_only

    if weight_mode:
        if schedule is not None:
            rows = _schedule_rows(al, schedule, allow_short)
        else:
            assert weights is not None
            w = validate_weights(al.symbols, weights, allow_short=allow_short)
            rows = {int(b): w for b in _decision_bars(al.times, n, rebalance, ann.market or cfg.market)}
        events = {b + 1: w for b, w in rows.items() if b + 1 < n}
        fill_bars = sorted(events)

        def step(j: int) -> None:
            _rebalance(ledger, j, events[j], cfg.fractional)
    else:
        sig = _signal_events(al, strategies, targets, cfg.long_only)
        fracs = _sizing(al.symbols, sizing)
        fill_bars = sorted(sig)

        def step(j: int) -> None:
            _signal_fills(ledger, j, sig[j], fracs)

    seg_start: list[int] = [0]
    seg_state = [ledger.snapshot()]
    for j in fill_bars:
        before = len(ledger.fills)
        step(j)
        # a bar without orders (entry unaffordable, target already held) continues the segment
        if len(ledger.fills) != before:
            seg_start.append(j)
            seg_state.append(ledger.snapshot())
    equity, cash, positions = _curves(al, seg_start, seg_state, n)

    last = al.close_ff[:, -1]
    open_trades = []
    for s, lots in enumerate(ledger.lots):
        for size, entry, entry_bar, comm in lots:
            gross_pct = math.copysign(1.0, size) * (last[s] / entry - 1.0)
            open_trades.append(
                PortfolioTrade(
                    int(entry_bar),
                    None,
                    float(entry),
                    float(last[s]),
                    float(size),
                    float(size * (last[s] - entry) - comm),
                    float(gross_pct - comm / (abs(size) * entry)),
                    float(comm),
                    "open",
                    symbol=al.symbols[s],
                )
            )
    if al.times is not None:
        for t in [*ledger.trades, *open_trades]:
            t.entry_time = al.times[t.entry_bar]
            t.exit_time = al.times[t.exit_bar] if t.exit_bar is not None else None
        for f in ledger.fills:
            f.time = al.times[f.bar]

    dd = m.drawdown_curve(equity)
    gross_units = np.abs(positions).sum(axis=0)
    metrics = compute_metrics(
        equity, ledger.trades, gross_units, _buy_and_hold(al), cfg, al.times, drawdown=dd, annualisation=ann
    )
    per_symbol = _per_symbol(al, ledger, open_trades, positions)
    return PortfolioResult(
        al.symbols,
        ledger.trades,
        open_trades,
        ledger.fills,
        equity,
        dd,
        cash,
        positions,
        al.close_ff,
        metrics,
        per_symbol,
        al.times,
        cfg,
        ann,
        "weights" if weight_mode else "signals",
    )


def _rebalance(ledger: _Ledger, j: int, weights: Mapping[str, float], fractional: bool) -> None:
    al = ledger.al
    tradable = [s for s in range(len(al.symbols)) if al.present[s, j]]
    equity, _ = ledger.equity_and_gross(j)
    target: dict[int, float] = {}
    for s in tradable:
        units = weights.get(al.symbols[s], 0.0) * equity / float(al.open[s, j])
        target[s] = units if fractional else math.copysign(math.floor(abs(units)), units)
    for s in tradable:  # reductions first: they free cash
        q, t = ledger.position(s), target[s]
        if q == 0.0:
            continue
        if t == 0.0 or math.copysign(1.0, t) != math.copysign(1.0, q):
            ledger.close_all(s, j, "rebalance")
        elif abs(t) < abs(q):
            ledger.reduce(s, j, abs(q) - abs(t), ledger.price("sell" if q > 0 else "buy", j, s), "rebalance")
    for s in tradable:
        q, t = ledger.position(s), target[s]
        if abs(t) > abs(q):
            ledger.increase(s, j, abs(t) - abs(q), math.copysign(1.0, t), math.inf, "rebalance")


def _signal_events(
    al: _Aligned,
    strategies: Mapping[str, SignalStrategy] | None,
    targets: Mapping[str, Any] | None,
    long_only: bool,
) -> dict[int, list[tuple[int, float]]]:
    """{union fill bar: [(symbol index, new direction)]} from each symbol's own target changes."""
    given: dict[str, Any] = {}
    unknown: dict[str, list[str]] = {}
    for name, src in (("strategies", strategies), ("targets", targets)):
        for sym, v in (src or {}).items():
            if sym not in al.symbols:
                unknown.setdefault(name, []).append(f"unknown symbol {sym!r}")
            elif sym in given:
                unknown.setdefault(name, []).append(f"{sym!r} has both a strategy and targets")
            else:
                given[sym] = (name, v)
    if unknown:
        raise ValidationFailed("signals for unknown symbols", details=unknown)
    events: dict[int, list[tuple[int, float]]] = {}
    for s, sym in enumerate(al.symbols):
        if sym not in given:
            continue
        kind, v = given[sym]
        own = al.bars[s]
        n_own = own["close"].size
        if kind == "strategies":
            target = _target_from_strategy(v, own, n_own)
        else:
            target = np.asarray(v, dtype=np.float64)
            if target.shape != (n_own,):
                raise ValidationFailed(
                    f"targets for {sym} have shape {target.shape}, its bars {n_own}",
                    details={"targets": {sym: [f"need {n_own} values, one per bar of {sym}"]}},
                )
        if long_only:
            target = np.where(target < 0, 0.0, target)
        desired = np.sign(_ffill_zero(target))
        fills = np.flatnonzero(np.diff(desired, prepend=0.0)) + 1  # the engine's rule, per symbol
        fills = fills[fills < n_own]
        for f in fills.tolist():
            events.setdefault(int(al.index[s][f]), []).append((s, float(desired[f - 1])))
    for lst in events.values():
        lst.sort()
    return events


def _sizing(symbols: list[str], sizing: Mapping[str, float] | None) -> dict[int, float] | None:
    if sizing is None:
        return None
    w = validate_weights(symbols, sizing, allow_short=False, field_name="sizing")
    return {symbols.index(k): v for k, v in w.items()}


def _signal_fills(
    ledger: _Ledger, j: int, orders: list[tuple[int, float]], fracs: dict[int, float] | None
) -> None:
    for s, d in orders:  # exits (and the closing leg of reversals) first
        q = ledger.position(s)
        if q != 0.0 and math.copysign(1.0, q) != d:
            ledger.close_all(s, j, "signal")
    entrants = [(s, d) for s, d in orders if d != 0.0 and ledger.position(s) == 0.0]
    if not entrants:
        return
    held = sum(1 for lots in ledger.lots if lots)
    k = held + len(entrants)
    equity, _ = ledger.equity_and_gross(j)
    for s, d in entrants:
        budget = equity * fracs.get(s, 0.0) if fracs is not None else equity / k
        ledger.increase(s, j, math.inf, d, budget, "signal")


def _curves(
    al: _Aligned, seg_start: list[int], seg_state: list[Any], n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    equity = np.empty(n)
    cash = np.empty(n)
    positions = np.zeros((len(al.symbols), n))
    ends = [*seg_start[1:], n]
    for a, b, (settled, lots) in zip(seg_start, ends, seg_state, strict=True):
        if b <= a:
            continue  # superseded by a later event on the same bar
        eq = equity[a:b]
        eq[:] = settled
        c = settled
        for s, (units, basis, single) in enumerate(lots):
            if units == 0.0:
                continue
            if single is not None:  # the engine's cash + size * (close - entry), bit for bit
                eq += units * (al.close_ff[s, a:b] - single)
            else:
                eq += units * al.close_ff[s, a:b] - basis
            c -= basis
            positions[s, a:b] = units
        cash[a:b] = c
    return equity, cash, positions


def _buy_and_hold(al: _Aligned) -> np.ndarray:
    """Equal-weight buy and hold (no rebalancing) of every symbol from its own first close."""
    first = np.array([b["close"][0] for b in al.bars])
    rel = al.close_ff / first[:, None]
    return np.where(np.isnan(rel), 1.0, rel).mean(axis=0)


def _per_symbol(
    al: _Aligned, ledger: _Ledger, open_trades: list[PortfolioTrade], positions: np.ndarray
) -> dict[str, dict[str, float]]:
    out = {}
    for s, sym in enumerate(al.symbols):
        closed = [t for t in ledger.trades if t.symbol == sym]
        opened = [t for t in open_trades if t.symbol == sym]
        fills = [f for f in ledger.fills if f.symbol == sym]
        qty = float(positions[s, -1])
        out[sym] = {
            "bars": float(al.bars[s]["close"].size),
            "fills": float(len(fills)),
            "closed_trades": float(len(closed)),
            "realised_pnl": float(sum(t.pnl for t in closed)),
            "unrealised_pnl": float(sum(t.pnl for t in opened)),
            "commissions": float(sum(f.commission for f in fills)),
            "final_units": qty,
            "final_value": qty * float(al.close_ff[s, -1]) if qty else 0.0,
            "buy_and_hold_return": float(al.bars[s]["close"][-1] / al.bars[s]["close"][0] - 1.0),
        }
    return out
