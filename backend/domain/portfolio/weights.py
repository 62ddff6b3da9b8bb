"""Weighting methods of an index: equal, custom, inverse volatility, risk parity (equal risk
contribution), minimum variance and market capitalisation.

Estimation convention (every risk-based method): the last ``lookback`` *simple* daily returns
``r_t = P_t / P_{t-1} - 1`` of the closes up to and including the rebalance day, the sample
covariance with ``ddof=1`` (``numpy.cov``), not annualised (the weights are scale-free). Inverse
volatility uses the standard deviations of the same window (``ddof=1``).

Every method returns long-only weights that sum to 1 (float64, one per instrument, in the universe's
order). Optimisation is by scipy.optimize; the tests check each result against an independent
computation (risk contributions, the closed-form minimum-variance portfolio, a brute-force grid).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import numpy as np
from scipy import optimize

from backend.domain.errors import ValidationFailed

METHODS = ("equal", "custom", "inverse_volatility", "risk_parity", "min_variance", "market_cap")
RISK_METHODS = ("inverse_volatility", "risk_parity", "min_variance")
DEFAULT_LOOKBACK = 60  # about one quarter of NSE sessions
MIN_LOOKBACK = 5


def _fail(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, {"fields": {field: [message]}})


def simple_returns(closes: np.ndarray) -> np.ndarray:
    """Simple returns of a (T, N) close matrix: (T-1, N)."""
    closes = np.asarray(closes, dtype=np.float64)
    return closes[1:] / closes[:-1] - 1.0


def covariance(returns: np.ndarray) -> np.ndarray:
    """Sample covariance (ddof=1) of a (L, N) return window; always (N, N)."""
    returns = np.asarray(returns, dtype=np.float64)
    if returns.shape[0] < 2:
        raise _fail("lookback", "at least 2 returns are needed to estimate a covariance")
    return np.atleast_2d(np.cov(returns, rowvar=False, ddof=1))


def _check_positive_variance(cov: np.ndarray, symbols: Sequence[str]) -> None:
    var = np.diag(cov)
    flat = [s for s, v in zip(symbols, var, strict=True) if not np.isfinite(v) or v <= 0]
    if flat:
        raise _fail(
            "symbols",
            f"no price variation over the lookback window for {', '.join(flat)}: "
            "its volatility is zero, so risk-based weights are undefined",
        )


def equal_weights(n: int) -> np.ndarray:
    return np.full(n, 1.0 / n)


def custom_weights(symbols: Sequence[str], weights: Mapping[str, float]) -> np.ndarray:
    """The given weights, normalised to sum to 1; every symbol needs one, none may be negative."""
    missing = [s for s in symbols if s not in weights]
    if missing:
        raise _fail("weights", f"no weight given for {', '.join(missing)}")
    extra = sorted(set(weights) - set(symbols))
    if extra:
        raise _fail("weights", f"weights for symbols outside the universe: {', '.join(extra)}")
    w = np.array([float(weights[s]) for s in symbols])
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise _fail("weights", "weights must be finite and >= 0 (long-only)")
    if w.sum() <= 0:
        raise _fail("weights", "weights must not all be 0")
    return w / w.sum()


def inverse_volatility_weights(cov: np.ndarray) -> np.ndarray:
    """w_i proportional to 1 / sigma_i."""
    inv = 1.0 / np.sqrt(np.diag(cov))
    return inv / inv.sum()


def risk_contributions(w: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Each asset's share of the portfolio variance: w_i (Sigma w)_i / w' Sigma w (sums to 1)."""
    w = np.asarray(w, dtype=np.float64)
    rc = w * (cov @ w)
    return rc / rc.sum()


def risk_parity_weights(cov: np.ndarray) -> np.ndarray:
    """Equal risk contribution (long-only, fully invested).

    y > 0 minimising the strictly convex 0.5 y'Sigma y - (1/N) sum(log y_i) (Spinu 2013; Roncalli,
    "Introduction to Risk Parity and Budgeting") solves Sigma y = 1/(N y): y_i (Sigma y)_i = 1/N for
    every i, so w = y / sum(y) has equal risk contributions. The first-order condition is solved
    with scipy.optimize.root (MINPACK hybrid Powell, exact Jacobian Sigma + diag(1/(N y^2))) from
    the inverse-volatility point; if that ever stalls, Newton-CG on the convex objective takes over.
    """
    n = cov.shape[0]
    if n == 1:
        return np.ones(1)
    b = np.full(n, 1.0 / n)
    # Scale so the Jacobian is well conditioned whatever the return units (daily variances ~1e-4).
    s = cov / float(np.mean(np.diag(cov)))

    def grad(y: np.ndarray) -> np.ndarray:
        return s @ y - b / y

    def hess(y: np.ndarray) -> np.ndarray:
        return s + np.diag(b / (y * y))

    def ok(y: np.ndarray) -> bool:
        return bool(np.all(np.isfinite(y)) and np.all(y > 0) and np.max(np.abs(grad(y))) < 1e-10)

    y0 = 1.0 / np.sqrt(np.diag(s))
    y0 = y0 / np.sqrt(y0 @ s @ y0)
    # MINPACK reports "not making progress" once the residual is at machine precision: the
    # residual itself, not its flag, decides.
    y = optimize.root(grad, y0, jac=hess, method="hybr", options={"xtol": 1e-14}).x
    if not ok(y):

        def f(v: np.ndarray) -> float:
            return np.inf if np.any(v <= 0) else float(0.5 * v @ s @ v - b @ np.log(v))

        y = optimize.minimize(f, y0, jac=grad, hess=hess, method="Newton-CG", options={"xtol": 1e-14}).x
    if not ok(y):
        raise ValidationFailed("risk parity did not converge", {"weighting": "risk_parity"})
    return y / y.sum()


def min_variance_weights(cov: np.ndarray) -> np.ndarray:
    """Long-only, fully invested minimum variance: min w'Sigma w s.t. sum(w) = 1, w >= 0 (SLSQP)."""
    n = cov.shape[0]
    if n == 1:
        return np.ones(1)
    scale = float(np.mean(np.diag(cov)))
    s = cov / scale
    res = optimize.minimize(
        lambda w: float(w @ s @ w),
        equal_weights(n),
        jac=lambda w: 2.0 * (s @ w),
        method="SLSQP",
        bounds=[(0.0, 1.0)] * n,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones_like(w)}],
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    if not res.success:
        raise ValidationFailed(
            f"minimum variance did not converge: {res.message}", {"weighting": "min_variance"}
        )
    w = np.clip(res.x, 0.0, None)  # SLSQP may leave -1e-17 on a bound
    return w / w.sum()


def shares_on(series: Sequence[tuple[date, float]], day: date) -> float | None:
    """Shares outstanding in force on ``day``: the last entry dated on or before it."""
    found = None
    for start, shares in series:
        if start <= day:
            found = shares
    return found


def market_cap_weights(
    symbols: Sequence[str],
    prices: np.ndarray,
    shares: Mapping[str, Sequence[tuple[date, float]]],
    day: date,
) -> np.ndarray:
    """w_i proportional to shares_i(day) * price_i(day). Refuses, naming the instrument, when an
    instrument has no shares-outstanding figure in force on ``day``."""
    caps = []
    for sym, price in zip(symbols, prices, strict=True):
        series = shares.get(sym)
        if not series:
            raise _fail(
                "shares_outstanding",
                f"{sym}: no shares-outstanding series, so market-cap weights are unavailable",
            )
        n = shares_on(series, day)
        if n is None:
            raise _fail(
                "shares_outstanding",
                f"{sym}: no shares-outstanding figure on or before {day.isoformat()}",
            )
        caps.append(n * float(price))
    caps_arr = np.array(caps)
    return caps_arr / caps_arr.sum()


def compute_weights(
    method: str,
    symbols: Sequence[str],
    closes_window: np.ndarray,
    day: date,
    *,
    custom: Mapping[str, float] | None = None,
    shares: Mapping[str, Sequence[tuple[date, float]]] | None = None,
) -> np.ndarray:
    """Target weights on ``day``. ``closes_window``: (lookback + 1, N) closes ending on ``day``
    (only its last row is used by the price-based methods)."""
    n = len(symbols)
    if method == "equal":
        return equal_weights(n)
    if method == "custom":
        return custom_weights(symbols, custom or {})
    if method == "market_cap":
        return market_cap_weights(symbols, closes_window[-1], shares or {}, day)
    if method not in RISK_METHODS:
        raise _fail("weighting", f"unknown weighting {method!r}; expected one of {', '.join(METHODS)}")
    cov = covariance(simple_returns(closes_window))
    _check_positive_variance(cov, symbols)
    if method == "inverse_volatility":
        return inverse_volatility_weights(cov)
    if method == "risk_parity":
        return risk_parity_weights(cov)
    return min_variance_weights(cov)
