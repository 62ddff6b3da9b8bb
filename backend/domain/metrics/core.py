"""Performance and risk metrics.

Conventions (all documented again in ``docs/backtesting.md``):

* ``equity`` is an account-value series, ``returns`` are simple per-period returns
  ``r[t] = equity[t] / equity[t-1] - 1`` (see :func:`returns_from_equity`).
* Annualisation uses ``periods_per_year`` (252 for daily bars by default): volatility scales by
  ``sqrt(periods_per_year)``, mean returns by ``periods_per_year`` (as empyrical does).
* Drawdowns and VaR are reported as positive fractions (0.25 means 25 % below the peak / a 25 % loss).
* A metric that is undefined for the input (too few points, zero variance, no losing trade)
  returns ``nan``; callers serialise ``nan`` as null.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike

NAN = float("nan")


def _a(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).ravel()


def returns_from_equity(equity: ArrayLike) -> np.ndarray:
    """Simple returns ``equity[t] / equity[t-1] - 1`` (length ``len(equity) - 1``)."""
    e = _a(equity)
    if e.size < 2:
        return np.empty(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.divide(e[1:], e[:-1])
        out -= 1.0  # in place: one full-length array instead of two
        return out


def total_return(equity: ArrayLike) -> float:
    """``equity[-1] / equity[0] - 1``."""
    e = _a(equity)
    if e.size == 0 or e[0] == 0:
        return NAN
    return float(e[-1] / e[0] - 1.0)


def _years(n_points: int, periods_per_year: float, dates: ArrayLike | None) -> float:
    if dates is not None:
        d = np.asarray(dates).astype("datetime64[s]")
        if d.size < 2:
            return NAN
        seconds = float((d[-1] - d[0]) / np.timedelta64(1, "s"))
        return seconds / (365.25 * 86400.0)
    return (n_points - 1) / float(periods_per_year)


def cagr(equity: ArrayLike, periods_per_year: float = 252, dates: ArrayLike | None = None) -> float:
    """Compound annual growth rate ``(equity[-1] / equity[0]) ** (1 / years) - 1``.

    ``years`` is the calendar span ``(dates[-1] - dates[0]) / 365.25 days`` when ``dates`` is
    given (backtesting.py's CAGR), else ``(len(equity) - 1) / periods_per_year``.
    """
    e = _a(equity)
    if e.size < 2 or e[0] <= 0:
        return NAN
    years = _years(e.size, periods_per_year, dates)
    if not years or math.isnan(years):
        return NAN
    ratio = e[-1] / e[0]
    if ratio <= 0:
        return -1.0
    return float(ratio ** (1.0 / years) - 1.0)


def annual_volatility(returns: ArrayLike, periods_per_year: float = 252) -> float:
    """Sample standard deviation of returns (``ddof=1``) times ``sqrt(periods_per_year)``."""
    r = _a(returns)
    if r.size < 2:
        return NAN
    return float(np.std(r, ddof=1) * math.sqrt(periods_per_year))


def _per_period_rf(risk_free: float, periods_per_year: float) -> float:
    # risk_free is an annual rate; convert to the compounding-equivalent per-period rate
    return (1.0 + risk_free) ** (1.0 / periods_per_year) - 1.0


def sharpe_ratio(returns: ArrayLike, periods_per_year: float = 252, risk_free: float = 0.0) -> float:
    """Annualised Sharpe ratio (empyrical's formula).

    ``excess = r - rf_p`` with ``rf_p = (1 + risk_free) ** (1 / periods_per_year) - 1``;
    ``sharpe = mean(excess) / std(excess, ddof=1) * sqrt(periods_per_year)``.
    """
    r = _a(returns)
    if r.size < 2:
        return NAN
    rf_p = _per_period_rf(risk_free, periods_per_year)
    ex = r - rf_p if rf_p else r  # r - 0.0 is r: skip a full copy
    sd = np.std(ex, ddof=1)
    if sd == 0 or not np.isfinite(sd):
        return NAN
    return float(np.mean(ex) / sd * math.sqrt(periods_per_year))


def sortino_ratio(returns: ArrayLike, periods_per_year: float = 252, risk_free: float = 0.0) -> float:
    """Annualised Sortino ratio (empyrical's formula).

    ``excess = r - rf_p``; ``downside = sqrt(mean(min(excess, 0) ** 2)) * sqrt(periods_per_year)``
    (mean over *all* periods); ``sortino = mean(excess) * periods_per_year / downside``.
    """
    r = _a(returns)
    if r.size < 1:
        return NAN
    rf_p = _per_period_rf(risk_free, periods_per_year)
    ex = r - rf_p if rf_p else r  # r - 0.0 is r: skip a full copy
    downside = math.sqrt(float(np.mean(np.minimum(ex, 0.0) ** 2))) * math.sqrt(periods_per_year)
    if downside == 0:
        return NAN
    return float(np.mean(ex) * periods_per_year / downside)


def return_ratios(
    returns: ArrayLike, periods_per_year: float = 252, risk_free: float = 0.0, *, overwrite: bool = False
) -> tuple[float, float, float]:
    """``(annual_volatility, sharpe_ratio, sortino_ratio)`` of the same returns, bit for bit what
    the three functions return, in fewer passes: the standard deviation and the mean are computed
    once, and ``overwrite=True`` lets the excess and downside passes reuse the memory of
    ``returns`` (which the caller then no longer needs) instead of new full-length arrays."""
    r = _a(returns)
    ann = math.sqrt(periods_per_year)
    if r.size < 1:
        return NAN, NAN, NAN
    rf_p = _per_period_rf(risk_free, periods_per_year)
    sd_r = np.std(r, ddof=1) if r.size >= 2 else None
    vol = float(sd_r * ann) if sd_r is not None else NAN
    if rf_p:
        ex = np.subtract(r, rf_p, out=r if overwrite else None)
        sd = np.std(ex, ddof=1) if r.size >= 2 else None
    else:
        ex, sd = r, sd_r
    mean = np.mean(ex)
    sharpe = NAN if sd is None or sd == 0 or not np.isfinite(sd) else float(mean / sd * ann)
    low = np.minimum(ex, 0.0, out=ex if overwrite else None)
    np.multiply(low, low, out=low)  # = low ** 2
    downside = math.sqrt(float(np.mean(low))) * ann
    sortino = NAN if downside == 0 else float(mean * periods_per_year / downside)
    return vol, sharpe, sortino


def drawdown_curve(equity: ArrayLike, out: np.ndarray | None = None) -> np.ndarray:
    """Drawdown per bar as a positive fraction: ``1 - equity / running_max(equity)`` (0 where the
    running maximum is not positive). ``out``: an array of the same length to write into."""
    e = _a(equity)
    if e.size == 0:
        return e.copy()
    peak = np.maximum.accumulate(e, out=out)
    with np.errstate(divide="ignore", invalid="ignore"):
        # the running maximum never falls and a NaN carries to the end: positive at bar 0 and
        # not NaN at the last bar means positive everywhere, and the curve is computed in place
        if peak[0] > 0 and not np.isnan(peak[-1]):
            np.divide(e, peak, out=peak)
            return np.subtract(1.0, peak, out=peak)
        dd = np.where(peak > 0, 1.0 - e / peak, 0.0)
    if out is None:
        return dd
    np.copyto(out, dd)
    return out


def max_drawdown(equity: ArrayLike, drawdown: np.ndarray | None = None) -> tuple[float, int]:
    """``(max drawdown fraction, longest drawdown duration in bars)``.

    The duration of a drawdown spell is the number of bars from the last peak (bar where
    drawdown is 0) to the bar where equity first gets back to that peak, or to the last bar
    if it never does; the longest spell is reported (independently of the deepest one).
    ``drawdown`` may pass an already computed :func:`drawdown_curve` of ``equity``.
    """
    dd = drawdown_curve(equity) if drawdown is None else np.asarray(drawdown, dtype=np.float64)
    if dd.size == 0:
        return NAN, 0
    # spell boundaries: every bar at a peak, plus the last bar (an unrecovered spell ends there)
    marks = np.flatnonzero(dd == 0.0)  # sorted and unique already
    if not marks.size or marks[-1] != dd.size - 1:
        marks = np.append(marks, dd.size - 1)
    gaps = np.diff(marks)
    spells = gaps[gaps > 1].tolist()
    if dd[-1] > 0 and gaps.size and gaps[-1] == 1:
        spells.append(1)  # went under water on the very last bar
    if dd[0] > 0:  # cannot happen for a positive series (bar 0 is its own peak); kept for safety
        spells.append(int(marks[0]))
    duration = int(max(spells)) if spells else 0
    return float(dd.max()), duration


def calmar_ratio(equity: ArrayLike, periods_per_year: float = 252, dates: ArrayLike | None = None) -> float:
    """``cagr(equity) / max_drawdown(equity)`` (empyrical: annual return / |max drawdown|)."""
    mdd, _ = max_drawdown(equity)
    if not mdd or math.isnan(mdd):
        return NAN
    return cagr(equity, periods_per_year, dates) / mdd


def historical_var(returns: ArrayLike, level: float = 0.95) -> float:
    """Historical Value-at-Risk as a positive loss fraction.

    ``-quantile(returns, 1 - level)`` with numpy's default linear interpolation between order
    statistics (Hyndman-Fan type 7, same as ``pandas.Series.quantile``).
    """
    r = _a(returns)
    if r.size == 0 or not 0 < level < 1:
        return NAN
    return float(-np.quantile(r, 1.0 - level))


def parametric_var(returns: ArrayLike, level: float = 0.95) -> float:
    """Gaussian (variance-covariance) VaR: ``-(mean + z * std)`` with ``z = Phi^-1(1 - level)``.

    ``std`` uses ``ddof=1``; ``z`` is -1.6449 at 95 % and -2.3263 at 99 %.
    """
    r = _a(returns)
    if r.size < 2 or not 0 < level < 1:
        return NAN
    z = NormalDist().inv_cdf(1.0 - level)
    return float(-(np.mean(r) + z * np.std(r, ddof=1)))


def sqn(trade_values: ArrayLike) -> float:
    """Van Tharp's System Quality Number: ``sqrt(n) * mean / std(ddof=1)`` of per-trade P&L or returns."""
    t = _a(trade_values)
    if t.size < 2:
        return NAN
    sd = np.std(t, ddof=1)
    if sd == 0:
        return NAN
    return float(math.sqrt(t.size) * np.mean(t) / sd)


def win_rate(trade_values: ArrayLike) -> float:
    """Fraction of trades with a strictly positive value (P&L or return)."""
    t = _a(trade_values)
    if t.size == 0:
        return NAN
    return float(np.mean(t > 0))


def profit_factor(trade_values: ArrayLike) -> float:
    """``sum(winners) / |sum(losers)|``; ``nan`` when there is no losing trade (as backtesting.py)."""
    t = _a(trade_values)
    losses = -t[t < 0].sum()
    if losses == 0:
        return NAN
    return float(t[t > 0].sum() / losses)


def expectancy(trade_values: ArrayLike) -> float:
    """Mean value per trade (arithmetic mean of per-trade returns or P&L)."""
    t = _a(trade_values)
    if t.size == 0:
        return NAN
    return float(np.mean(t))


def exposure(position: ArrayLike) -> float:
    """Fraction of bars with a non-zero position (``position`` is per-bar size or a boolean mask)."""
    p = _a(position)
    if p.size == 0:
        return NAN
    return float(np.mean(p != 0))
