"""Index and portfolio computation: target weights, rebalancing rules, charges on each rebalance,
and the value series.

Conventions (docs/portfolios.md):

* Prices are daily closes on the days every instrument of the universe traded. Weights are set
  and trades done at the close of the rebalance day, from data up to that close.
* Rebalance rules: ``never`` (the first day's allocation is held), ``monthly`` / ``quarterly``
  (the first trading day of each new calendar month / quarter), ``drift`` (a day whose close
  weights have moved from the targets by more than ``threshold``: absolute ``|w - t|`` or
  relative ``|w / t - 1|``, in any instrument). A rebalance re-estimates the targets.
* Charges: every rebalance trade is one delivery order per instrument, charged by the platform's
  :class:`~backend.domain.charges.ChargeSchedule` with the rates in force on that day; the
  charges are paid out of the portfolio, so the amount invested after a rebalance is the value
  before it minus its charges (solved as a fixed point to the paisa).
* ``whole_shares=False`` (an index): fractional units, fully invested. ``whole_shares=True``
  (an investment simulation): whole shares rounded down, the remainder kept as cash (no interest).

Money is float64 inside the loop (as in the backtest engine); charges are computed in Decimal by
the charge schedule, per order, to the paisa.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import numpy as np
from threadpoolctl import threadpool_limits

from backend.domain.charges import ChargeSchedule
from backend.domain.errors import ValidationFailed
from backend.domain.orders.types import Product, Side
from backend.domain.portfolio.weights import (
    DEFAULT_LOOKBACK,
    METHODS,
    MIN_LOOKBACK,
    RISK_METHODS,
    compute_weights,
)

RULES = ("never", "monthly", "quarterly", "drift")
DRIFT_MODES = ("absolute", "relative")
_ZERO = Decimal("0.00")


def _fail(field_name: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, {"fields": {field_name: [message]}})


@dataclass(frozen=True)
class IndexSpec:
    """What an index holds and how: the universe, the weighting method and the rebalance rule."""

    symbols: tuple[str, ...]
    weighting: str = "equal"
    rebalance: str = "monthly"
    lookback: int = DEFAULT_LOOKBACK
    drift_threshold: float | None = None
    drift_mode: str = "absolute"
    custom_weights: Mapping[str, float] | None = None
    shares_outstanding: Mapping[str, Sequence[tuple[date, float]]] | None = None

    def validate(self) -> None:
        if not self.symbols:
            raise _fail("symbols", "the universe needs at least one instrument")
        if len(set(self.symbols)) != len(self.symbols):
            raise _fail("symbols", "each instrument may appear once")
        if self.weighting not in METHODS:
            raise _fail("weighting", f"must be one of {', '.join(METHODS)}")
        if self.rebalance not in RULES:
            raise _fail("rebalance", f"must be one of {', '.join(RULES)}")
        if self.weighting in RISK_METHODS and self.lookback < MIN_LOOKBACK:
            raise _fail("lookback", f"must be at least {MIN_LOOKBACK} returns")
        if self.rebalance == "drift":
            if self.drift_mode not in DRIFT_MODES:
                raise _fail("drift_mode", f"must be one of {', '.join(DRIFT_MODES)}")
            if self.drift_threshold is None or not self.drift_threshold > 0:
                raise _fail("drift_threshold", "a drift rebalance needs a threshold > 0")
        if self.weighting == "custom":
            compute_weights(
                "custom", self.symbols, np.ones((1, len(self.symbols))), date.min, custom=self.custom_weights
            )

    @property
    def warmup(self) -> int:
        """Closes needed before the first index day (the covariance window)."""
        return self.lookback if self.weighting in RISK_METHODS else 0


@dataclass
class Holdings:
    """The portfolio after a day's close: what a later computation continues from."""

    day: date
    units: np.ndarray
    cash: float
    target: np.ndarray


@dataclass
class Rebalance:
    day: date
    target: np.ndarray
    prices: np.ndarray
    units_before: np.ndarray
    units_after: np.ndarray
    charges: list[Decimal]  # per instrument, that day's order (0.00 when it did not trade)
    value_before: float  # portfolio value at the close, before the trades
    value_after: float  # after the trades and their charges

    @property
    def total_charges(self) -> Decimal:
        return sum(self.charges, _ZERO)


@dataclass
class IndexRun:
    days: list[date]
    equity: np.ndarray  # portfolio value at each day's close (after that day's rebalance)
    cash: np.ndarray
    rebalances: list[Rebalance] = field(default_factory=list)
    final: Holdings | None = None


def _quarter(d: date) -> tuple[int, int]:
    return d.year, (d.month - 1) // 3


def _calendar_due(rule: str, prev: date, day: date) -> bool:
    if rule == "monthly":
        return (day.year, day.month) != (prev.year, prev.month)
    if rule == "quarterly":
        return _quarter(day) != _quarter(prev)
    return False


def drift_exceeded(weights: np.ndarray, target: np.ndarray, threshold: float, mode: str) -> bool:
    """True when any weight is more than ``threshold`` from its target (absolute or relative)."""
    if mode == "absolute":
        return bool(np.max(np.abs(weights - target)) > threshold)
    held = target > 0
    if np.any(weights[~held] > 0):
        return True  # something held that should not be: infinitely far in relative terms
    return bool(np.max(np.abs(weights[held] / target[held] - 1.0)) > threshold)


def _turnover(qty: float, price: float) -> Decimal:
    return Decimal(repr(round(abs(float(qty)) * float(price), 4)))


def rebalance_charges(
    schedule: ChargeSchedule | None,
    day: date,
    trades: np.ndarray,
    prices: np.ndarray,
    product: Product = Product.D,
    segment: str = "EQ",
) -> list[Decimal]:
    """Charges of one order per traded instrument (BUY for a positive trade, SELL for a negative)."""
    out: list[Decimal] = []
    for qty, price in zip(trades, prices, strict=True):
        value = _turnover(qty, price)
        if schedule is None or value <= 0:
            out.append(_ZERO)
            continue
        side = Side.BUY if qty > 0 else Side.SELL
        out.append(schedule.order_charges(side, product, value, segment, on=day).total)
    return out


def _trade_to(
    value: float,
    target: np.ndarray,
    prices: np.ndarray,
    units: np.ndarray,
    day: date,
    schedule: ChargeSchedule | None,
    whole_shares: bool,
    product: Product,
    segment: str,
) -> tuple[np.ndarray, list[Decimal], float]:
    """New units, their charges and the cash left, for a portfolio worth ``value`` at ``prices``.

    The charges depend on the trades, which depend on what is left to invest after the charges:
    iterate from "no charges" until the charges (in paise) repeat. Fractional units invest all of
    ``value - charges``; whole shares round down and keep the rest as cash, shrinking the budget
    until shares plus charges fit in ``value``.
    """
    reserve = 0.0
    for attempt in range(500):
        budget = max(value - reserve, 0.0)
        new = budget * target / prices
        if whole_shares:
            new = np.floor(new + 1e-9)  # 1e-9: an exact multiple must not lose a share to rounding
        charges = rebalance_charges(schedule, day, new - units, prices, product, segment)
        paid = float(sum(charges, _ZERO))
        cost = float(new @ prices)
        if whole_shares:
            overshoot = cost + paid - value
            if overshoot <= 1e-9:
                return new, charges, value - cost - paid
            reserve += max(overshoot, 0.01)
        elif abs(paid - reserve) < 0.005:
            return new, charges, value - cost - paid
        elif attempt >= 10 and paid <= reserve:
            # Paise can flip-flop at a rounding boundary: keep the larger reserve, the paisa or
            # two it leaves over stays as cash.
            return new, charges, value - cost - paid
        else:
            reserve = paid if attempt < 10 else max(reserve, paid) + 0.01
    raise ValidationFailed(
        f"rebalance on {day.isoformat()}: the charges did not settle", {"day": day.isoformat()}
    )


def run_index(
    spec: IndexSpec,
    days: Sequence[date],
    closes: np.ndarray,
    start: int,
    capital: float,
    *,
    whole_shares: bool = False,
    schedule: ChargeSchedule | None = None,
    product: Product = Product.D,
    segment: str = "EQ",
    state: Holdings | None = None,
) -> IndexRun:
    """Compute the portfolio from ``days[start]`` to the last day.

    ``closes``: (T, N) closes in the universe's order, ``days``: the T trading days. Without
    ``state`` the first day invests ``capital`` at its close. With ``state`` (the holdings after
    ``days[start - 1]``, from an earlier computation) it continues exactly where that one stopped,
    so computing in two steps gives the same series as computing once.
    """
    spec.validate()
    closes = np.asarray(closes, dtype=np.float64)
    n = len(spec.symbols)
    if closes.ndim != 2 or closes.shape != (len(days), n):
        raise _fail("symbols", f"closes must be (days, instruments) = ({len(days)}, {n}), got {closes.shape}")
    if not np.all(np.isfinite(closes)) or np.any(closes <= 0):
        raise _fail("symbols", "closes must be finite and positive")
    if start >= len(days):
        raise _fail("start", "no trading day to compute")
    if start < spec.warmup:
        raise _fail(
            "start",
            f"{spec.weighting} needs {spec.lookback} daily returns before the first index day; "
            f"only {start} closes are available",
        )
    if state is not None and (start == 0 or state.day != days[start - 1]):
        raise _fail("start", "the holdings to continue from must be those of the day before the first day")

    def target_on(t: int) -> np.ndarray:
        window = closes[t - spec.warmup : t + 1]
        return compute_weights(
            spec.weighting,
            spec.symbols,
            window,
            days[t],
            custom=spec.custom_weights,
            shares=spec.shares_outstanding,
        )

    out_days = list(days[start:])
    equity = np.empty(len(out_days))
    cash_series = np.empty(len(out_days))
    rebalances: list[Rebalance] = []
    if state is None:
        units, cash, target = np.zeros(n), float(capital), np.zeros(n)
    else:
        units, cash, target = (
            state.units.astype(np.float64),
            float(state.cash),
            state.target.astype(np.float64),
        )

    # The matrices are small (N x N): a multi-threaded BLAS only adds thread hand-offs, and on a
    # busy machine they made the optimisers up to ten times slower (docs/benchmarks.md).
    with threadpool_limits(limits=1, user_api="blas"):
        for k, t in enumerate(range(start, len(days))):
            px = closes[t]
            value = cash + float(units @ px)
            due = state is None and k == 0
            if not due and t > 0:
                if spec.rebalance == "drift":
                    weights = units * px / value if value > 0 else np.zeros(n)
                    due = drift_exceeded(weights, target, float(spec.drift_threshold or 0), spec.drift_mode)
                else:
                    due = _calendar_due(spec.rebalance, days[t - 1], days[t])
            if due:
                target = target_on(t)
                new_units, charges, cash = _trade_to(
                    value, target, px, units, days[t], schedule, whole_shares, product, segment
                )
                rebalances.append(
                    Rebalance(
                        days[t],
                        target,
                        px.copy(),
                        units,
                        new_units,
                        charges,
                        value,
                        cash + float(new_units @ px),
                    )
                )
                units = new_units
                value = cash + float(units @ px)
            equity[k] = value
            cash_series[k] = cash
    final = Holdings(days[-1], units, cash, target)
    return IndexRun(out_days, equity, cash_series, rebalances, final)


def index_levels(equity: np.ndarray, capital: float, base_value: float) -> np.ndarray:
    """Index level: ``base_value`` times the portfolio's value over the capital it started with."""
    return base_value * np.asarray(equity, dtype=np.float64) / capital


def align_rates(
    days: Sequence[date], rates: Mapping[date, float], field_name: str = "currency"
) -> np.ndarray:
    """One FX rate per trading day: that day's, else the last one before it (FX and exchange
    holidays differ). No rate on or before the first day is an error."""
    known = sorted(rates.items())
    out = np.empty(len(days))
    i, last = 0, math.nan
    for k, d in enumerate(days):
        while i < len(known) and known[i][0] <= d:
            last = float(known[i][1])
            i += 1
        if math.isnan(last):
            raise _fail(field_name, f"no FX rate on or before {d.isoformat()}")
        out[k] = last
    return out
