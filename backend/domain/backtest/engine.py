"""Vectorised single-asset backtest engine.

Conventions (see docs/backtesting.md for the full list):

* The strategy's targets are computed on bar close; orders fill at the **next bar's open**.
  A signal on the last bar never fills.
* All-in sizing on the fill price: ``units = floor(cash * (1 - eps) // (price * (1 + rate)))``
  for a flat commission ``rate`` (the exact expression backtesting.py 0.6 uses), or the largest
  quantity whose value plus ``cost(side, qty, price)`` fits in cash for a cost function.
  ``fractional=True`` drops the flooring.
* Cash accounting as backtesting.py: commission is paid at entry and at exit;
  ``equity[i] = cash + size * (close[i] - entry_price)``.
* A position still open after the last bar is **not** closed: it is marked at the last close,
  reported in ``open_trade`` and left out of the closed-trade statistics (backtesting.py's
  ``finalize_trades=False``); the final equity includes its unrealised P&L.
* Stop-loss / take-profit are fractions of the entry price, checked from the entry bar on with
  the bar's low/high; a gap through the stop fills at the open; if both are touched in one bar
  the stop-loss is assumed first (pessimistic). After a stop the position stays flat until the
  strategy's target changes again.

The Python loop runs once per fill event (entry, exit or reversal), never once per bar.
"""

from __future__ import annotations

import inspect
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np

from backend.domain import metrics as m
from backend.domain.backtest.annualise import MARKET_CHOICES, Annualisation, infer
from backend.domain.backtest.data import load_ohlcv
from backend.domain.errors import ValidationFailed
from backend.domain.strategies.base import SignalStrategy

# cost(side, qty, price), or cost(side, qty, price, day): a four-argument function is given each
# trade's date (the bar's day), so dated charge rates apply as of the trade (config/trading.yaml)
CostFunction = Callable[..., "float | Decimal"]

# backtesting.py sizes "all-in" orders as 1 - machine epsilon of the available margin
_FULL_EQUITY = 1 - sys.float_info.epsilon


@dataclass(frozen=True)
class BacktestConfig:
    cash: float = 10_000.0
    commission: float | CostFunction = 0.0  # fraction of traded value per side, or cost(side, qty, price)
    slippage: float = 0.0  # fraction: buys fill at price * (1 + s), sells at price * (1 - s)
    fractional: bool = False
    long_only: bool = True
    stop_loss: float | None = None  # fraction below (long) / above (short) the entry price
    take_profit: float | None = None  # fraction above (long) / below (short) the entry price
    # None: inferred from the bars' spacing and the market's calendar (backend.domain.backtest.annualise)
    periods_per_year: float | None = None
    market: str = "auto"  # "auto" | "nse" | "crypto" | "fx": calendar for periods_per_year
    risk_free: float = 0.0  # annual rate for Sharpe / Sortino

    def validate(self) -> None:
        errors: dict[str, list[str]] = {}
        if not (self.cash > 0 and math.isfinite(self.cash)):
            errors["cash"] = ["must be a positive number"]
        if not callable(self.commission) and not (0 <= float(self.commission) < 0.1):
            errors["commission"] = ["must be a fraction in [0, 0.1) or a cost function"]
        if not 0 <= self.slippage < 0.1:
            errors["slippage"] = ["must be a fraction in [0, 0.1)"]
        for name in ("stop_loss", "take_profit"):
            v = getattr(self, name)
            if v is not None and not 0 < v < 1:
                errors[name] = ["must be a fraction in (0, 1)"]
        if self.periods_per_year is not None and not (
            self.periods_per_year > 0 and math.isfinite(self.periods_per_year)
        ):
            errors["periods_per_year"] = ["must be positive"]
        if self.market not in MARKET_CHOICES:
            errors["market"] = [f"one of {', '.join(MARKET_CHOICES)}"]
        if not (-1 < self.risk_free < 1):
            errors["risk_free"] = ["must be an annual rate in (-1, 1)"]
        if errors:
            raise ValidationFailed("invalid backtest settings", details=errors)


@dataclass
class Trade:
    entry_bar: int
    exit_bar: int | None
    entry_price: float
    exit_price: float | None
    size: float  # signed units: > 0 long, < 0 short
    pnl: float
    return_pct: float  # fraction, net of commissions (backtesting.py's ReturnPct)
    commission: float
    exit_reason: str  # "signal", "stop_loss", "take_profit" or "open"
    entry_time: Any = None
    exit_time: Any = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("entry_time", "exit_time"):
            if d[k] is not None:
                d[k] = str(d[k])
        return d


@dataclass
class BacktestResult:
    trades: list[Trade]
    open_trade: Trade | None
    equity: np.ndarray
    drawdown: np.ndarray
    position: np.ndarray  # signed units held at each bar's close
    metrics: dict[str, float]
    times: np.ndarray | None = None
    config: BacktestConfig = field(default_factory=BacktestConfig)
    annualisation: Annualisation | None = None

    def to_dict(self, include_curves: bool = True) -> dict[str, Any]:
        def clean(x: float) -> float | None:
            return None if x is None or not math.isfinite(x) else float(x)

        out: dict[str, Any] = {
            "metrics": {k: clean(v) for k, v in self.metrics.items()},
            "trades": [t.to_dict() for t in self.trades],
            "open_trade": self.open_trade.to_dict() if self.open_trade else None,
            "annualisation": self.annualisation.to_dict() if self.annualisation else None,
        }
        if include_curves:
            out["equity"] = [clean(v) for v in self.equity.tolist()]
            out["drawdown"] = [clean(v) for v in self.drawdown.tolist()]
            out["times"] = [str(t) for t in self.times] if self.times is not None else None
        return out


class _Costs:
    """Commission model: flat rate (exactly as backtesting.py) or a pluggable cost function."""

    def __init__(self, commission: float | CostFunction, fractional: bool, times: np.ndarray | None = None):
        self.fn = commission if callable(commission) else None
        self.rate = 0.0 if self.fn else float(commission)
        self.fractional = fractional
        # each bar's day, for a cost function that takes the trade's date
        self.days = times.astype("datetime64[D]") if times is not None and _takes_day(self.fn) else None

    def cost(self, side: str, qty: float, price: float, bar: int | None = None) -> float:
        if self.fn is not None:
            if self.days is not None and bar is not None:
                day: date = self.days[bar].item()
                return float(self.fn(side, abs(qty), price, day))
            return float(self.fn(side, abs(qty), price))
        return abs(qty) * price * self.rate

    def size(self, side: str, cash: float, price: float, bar: int | None = None) -> float:
        """Largest quantity whose value plus commission fits in ``cash``."""
        if cash <= 0 or price <= 0:
            return 0.0
        budget = cash * _FULL_EQUITY
        if self.fn is None:
            # identical arithmetic to backtesting.py: adjusted price + commission(size, price) / size
            per_unit = price + (_FULL_EQUITY * price * self.rate) / _FULL_EQUITY
            return budget / per_unit if self.fractional else float(budget // per_unit)
        qty = budget / price
        for _ in range(50):  # cost grows with qty: iterate down to the fixed point
            new = max(0.0, (budget - self.cost(side, qty, price, bar)) / price)
            if not self.fractional:
                new = float(math.floor(new))
            if abs(new - qty) < 1e-12:
                break
            qty = new
        while qty > 0 and qty * price + self.cost(side, qty, price, bar) > budget:
            qty = qty - 1.0 if not self.fractional else qty * (1 - 1e-9)
        return max(qty, 0.0)


def _takes_day(fn: Callable[..., Any] | None) -> bool:
    """Whether a cost function accepts a fourth argument, the trade's date."""
    if fn is None:
        return False
    try:
        inspect.signature(fn).bind("buy", 1.0, 1.0, None)
    except (TypeError, ValueError):
        return False
    return True


def _target_from_strategy(strategy: SignalStrategy, data: Mapping[str, Any], n: int) -> np.ndarray:
    target = np.asarray(strategy.target_positions(data), dtype=np.float64)
    if target.shape != (n,):
        raise ValueError(f"strategy returned {target.shape} targets for {n} bars")
    return target


def run_backtest(
    data: Mapping[str, Any],
    strategy: SignalStrategy | None = None,
    config: BacktestConfig | None = None,
    *,
    target: np.ndarray | None = None,
    validate: bool = True,
    annualisation: Annualisation | None = None,
    **overrides: Any,
) -> BacktestResult:
    """Run one backtest.

    ``data``: mapping with ``open``, ``high``, ``low``, ``close`` arrays (case-insensitive keys;
    ``volume`` optional) and optionally ``time`` (datetime64 array). Either ``strategy`` or a
    precomputed ``target`` array (+1/-1/0/NaN per bar) is required. Keyword ``overrides`` replace
    fields of ``config`` (e.g. ``commission=0.002``). Bars go through the same loader as CSV
    uploads (:func:`backend.domain.backtest.data.load_ohlcv`): a NaN, a non-positive price, a high
    below the open/close or a low above it, or non-increasing times raise ``ValidationFailed``
    naming the bar. ``validate=False`` skips the bar checks for data already validated (sweeps).
    ``annualisation``: periods per year already inferred for these bars and ``config`` (sweeps).
    """
    cfg = config or BacktestConfig()
    if overrides:
        cfg = BacktestConfig(**{**asdict(cfg), **overrides})
    cfg.validate()
    # the one loader: parses timestamps and validates every bar (NaN, prices, high/low, order)
    bars = load_ohlcv(data, validate=validate)
    o, h, lo, c = bars["open"], bars["high"], bars["low"], bars["close"]
    n = c.size
    times = bars.get("time")

    if target is None:
        if strategy is None:
            raise ValueError("run_backtest needs a strategy or a target array")
        target = _target_from_strategy(strategy, bars, n)
    target = np.asarray(target, dtype=np.float64)
    # Only bars with an opinion (non-NaN target) can change the desired position: work on those
    # instead of forward-filling the whole series (same result, a fraction of the passes).
    known = np.flatnonzero(target == target)  # not NaN: one comparison instead of isnan and invert
    wanted = np.sign(target[known])
    if cfg.long_only:
        wanted[wanted < 0] = 0.0
    # bars whose close changed the desired position (flat before the first opinion); each fills
    # at the next open
    changed = wanted != np.concatenate(([0.0], wanted[:-1]))
    fills = known[changed] + 1
    new_dir = wanted[changed]
    keep = fills < n
    fills, new_dir = fills[keep], new_dir[keep]

    costs = _Costs(cfg.commission, cfg.fractional, times)
    flat_rate = costs.rate if costs.fn is None else None
    slip = cfg.slippage
    sl, tp = cfg.stop_loss, cfg.take_profit
    stops = sl is not None or tp is not None

    cash = float(cfg.cash)
    size = 0.0
    entry_price = 0.0
    entry_bar = -1
    entry_comm = 0.0
    # closed trades as tuples (entry_bar, exit_bar, entry, exit, size, pnl, return, commission,
    # reason); Trade objects are built once at the end
    closed: list[tuple] = []
    # equity segments: from bar seg_start[k] on, equity = seg_cash[k] + seg_size[k] * (close - seg_entry[k])
    seg_start: list[int] = [0]
    seg_cash: list[float] = [cash]
    seg_size: list[float] = [0.0]
    seg_entry: list[float] = [0.0]

    def close_position(bar: int, price: float, reason: str) -> None:
        nonlocal cash, size
        bar, price = int(bar), float(price)
        if flat_rate is not None:
            comm = abs(size) * price * flat_rate
        else:
            comm = costs.cost("sell" if size > 0 else "buy", size, price, bar)
        gross = size * (price - entry_price)
        cash += gross - comm
        total_comm = entry_comm + comm
        ret = math.copysign(1.0, size) * (price / entry_price - 1.0) - total_comm / (abs(size) * entry_price)
        closed.append((entry_bar, bar, entry_price, price, size, gross - total_comm, ret, total_comm, reason))
        size = 0.0

    # Python floats from here: the loop runs once per fill event, and numpy scalars are slow
    fill_bars = fills.tolist()
    fill_opens = o[fills].tolist()
    for k, d in enumerate(new_dir.tolist()):
        if d == 0.0 and size == 0.0:
            continue  # already flat (e.g. stopped out, or the entry was unaffordable): nothing to do
        j = fill_bars[k]
        op = fill_opens[k]
        held = size != 0.0
        if held and (d == 0.0 or (size > 0) != (d > 0)):
            close_position(j, op * (1 - slip) if size > 0 else op * (1 + slip), "signal")
        if d != 0.0 and size == 0.0:
            px = op * (1 + slip) if d > 0 else op * (1 - slip)
            if flat_rate is not None:
                # identical arithmetic to backtesting.py (see _Costs.size)
                if cash > 0 and px > 0:
                    per_unit = px + (_FULL_EQUITY * px * flat_rate) / _FULL_EQUITY
                    budget = cash * _FULL_EQUITY
                    qty = budget / per_unit if cfg.fractional else float(budget // per_unit)
                else:
                    qty = 0.0
            else:
                qty = costs.size("buy" if d > 0 else "sell", cash, px, j)
            if qty > 0:
                size = qty * d
                entry_price, entry_bar = px, j
                entry_comm = (
                    qty * px * flat_rate
                    if flat_rate is not None
                    else costs.cost("buy" if d > 0 else "sell", qty, px, j)
                )
                cash -= entry_comm
            elif not held:
                continue  # the entry was unaffordable and nothing was held: the equity is unchanged
        seg_start.append(j)
        seg_cash.append(cash)
        seg_size.append(size)
        seg_entry.append(entry_price if size else 0.0)

        if size != 0.0 and stops:
            end = fill_bars[k + 1] if k + 1 < len(fill_bars) else n  # exclusive: next open exits anyway
            _check_stops(j, end, o, h, lo, sl, tp, slip, size, entry_price, close_position)
            if size == 0.0:
                seg_start.append(closed[-1][1])
                seg_cash.append(cash)
                seg_size.append(0.0)
                seg_entry.append(0.0)

    trades = [Trade(*t) for t in closed]
    # each bar belongs to the last segment starting at or before it (zero-length segments vanish)
    lengths = np.diff(np.asarray(seg_start), append=n)
    s_size = np.repeat(np.asarray(seg_size), lengths)
    # cash + size * (close - entry), in place; the per-bar cash is laid out in the array that
    # then receives the drawdown curve, so the curves cost no full-length temporaries at 5M bars
    equity = np.repeat(np.asarray(seg_entry), lengths)
    np.subtract(c, equity, out=equity)
    equity *= s_size
    dd = np.repeat(np.asarray(seg_cash), lengths)
    equity += dd

    open_trade = None
    if size != 0.0:
        last = float(c[-1])
        gross_pct = math.copysign(1.0, size) * (last / entry_price - 1.0)
        open_trade = Trade(
            entry_bar,
            None,
            float(entry_price),
            last,
            float(size),
            float(size * (last - entry_price) - entry_comm),
            float(gross_pct - entry_comm / (abs(size) * entry_price)),
            float(entry_comm),
            "open",
        )
    if times is not None:
        for t in [*trades, *([open_trade] if open_trade else [])]:
            t.entry_time = times[t.entry_bar]
            t.exit_time = times[t.exit_bar] if t.exit_bar is not None else None

    dd = m.drawdown_curve(equity, out=dd)
    ann = annualisation or infer(times, cfg.market, cfg.periods_per_year)
    metrics = compute_metrics(equity, trades, s_size, c, cfg, times, drawdown=dd, annualisation=ann)
    return BacktestResult(trades, open_trade, equity, dd, s_size, metrics, times, cfg, ann)


def _check_stops(
    start: int,
    end: int,
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    sl: float | None,
    tp: float | None,
    slip: float,
    size: float,
    entry: float,
    close_position: Callable[[int, float, str], None],
) -> None:
    """Find the first bar in ``[start, end)`` where the stop-loss or take-profit triggers and close there."""
    long = size > 0
    hi, low = h[start:end], lo[start:end]
    sl_px = tp_px = None
    sl_hit = tp_hit = np.zeros(end - start, dtype=bool)
    if sl is not None:
        sl_px = entry * (1 - sl) if long else entry * (1 + sl)
        sl_hit = low <= sl_px if long else hi >= sl_px
    if tp is not None:
        tp_px = entry * (1 + tp) if long else entry * (1 - tp)
        tp_hit = hi >= tp_px if long else low <= tp_px
    any_hit = sl_hit | tp_hit
    if not any_hit.any():
        return
    i = int(np.argmax(any_hit))
    bar = start + i
    if sl_hit[i]:
        assert sl_px is not None
        # a gap through the stop fills at the (worse) open; the entry bar opens at the entry price
        px = min(o[bar], sl_px) if long else max(o[bar], sl_px)
        px = px * (1 - slip) if long else px * (1 + slip)
        close_position(bar, px, "stop_loss")
    else:
        assert tp_px is not None
        px = max(o[bar], tp_px) if long else min(o[bar], tp_px)
        close_position(bar, px, "take_profit")


def compute_metrics(
    equity: np.ndarray,
    trades: list[Trade],
    position: np.ndarray,
    close: np.ndarray,
    cfg: BacktestConfig,
    times: np.ndarray | None = None,
    drawdown: np.ndarray | None = None,
    annualisation: Annualisation | None = None,
) -> dict[str, float]:
    """Backtest summary metrics (formulas in ``backend.domain.metrics`` and docs/backtesting.md)."""
    ann = annualisation or infer(times, cfg.market, cfg.periods_per_year)
    ppy = ann.periods_per_year
    rf = cfg.risk_free
    rets = m.returns_from_equity(equity)
    # one standard deviation for volatility and Sharpe; the downside pass reuses rets' memory
    vol, sharpe, sortino = m.return_ratios(rets, ppy, rf, overwrite=True)
    dates = times if times is not None and np.issubdtype(np.asarray(times).dtype, np.datetime64) else None
    if dates is not None and dates.size >= 2:
        dates = dates[
            [0, -1]
        ]  # CAGR needs only the span; converting every timestamp costs ~10 ms per 1M bars
    mdd, mdd_dur = m.max_drawdown(equity, drawdown=drawdown)
    growth = m.cagr(equity, ppy, dates)
    pnl = np.array([t.pnl for t in trades])
    tret = np.array([t.return_pct for t in trades])
    if tret.size and np.all(tret > -1):
        avg_trade = float(np.exp(np.log1p(tret).mean()) - 1)  # geometric mean, as backtesting.py
    else:
        avg_trade = float("nan") if not tret.size else 0.0
    return {
        "start_equity": float(equity[0]) if equity.size else float("nan"),
        "final_equity": float(equity[-1]),
        "peak_equity": float(equity.max()),
        "total_return": m.total_return(equity),
        "cagr": growth,
        "annual_volatility": vol,
        "sharpe": sharpe,
        "sortino": sortino,
        "calmar": growth / mdd if mdd else float("nan"),  # = metrics.calmar_ratio without recomputing
        "max_drawdown": mdd,
        "max_drawdown_duration_bars": float(mdd_dur),
        "num_trades": float(len(trades)),
        "win_rate": m.win_rate(pnl),
        "profit_factor": m.profit_factor(tret),
        "expectancy": m.expectancy(tret),
        "avg_trade": avg_trade,
        "best_trade": float(tret.max()) if tret.size else float("nan"),
        "worst_trade": float(tret.min()) if tret.size else float("nan"),
        "exposure": m.exposure(position),
        "buy_and_hold_return": float(close[-1] / close[0] - 1.0),
        "sqn": m.sqn(pnl),
        "commissions": float(sum(t.commission for t in trades)),
        "periods_per_year": float(ppy),
    }
