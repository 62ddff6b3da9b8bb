"""Black–Scholes–Merton pricing, greeks and implied volatility for European options.

Conventions (see docs/options.md):

* ``option_type`` is ``"CE"`` (call) or ``"PE"`` (put).
* ``t_years`` is time to expiry in years (ACT/365), ``rate`` and ``q`` are continuously
  compounded annual rates, ``vol`` is annualised (0.2 == 20 %).
* ``theta`` is per calendar day (annual theta / 365), ``vega`` is per 1 vol point
  (a change of 0.01 in ``vol``), ``rho`` is per 1 % change in ``rate`` (0.01).
* At or past expiry (``t <= 0``) or with zero volatility the price is the discounted
  forward intrinsic value and the greeks are those of that deterministic payoff.

Inputs may be ``Decimal``/``int``; everything is computed in float64 (this is a numeric
engine, not money). Callers quantise prices to money themselves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from backend.domain.errors import ValidationFailed

# scipy is optional: a faster vectorised normal CDF and Brent's method when installed. It is
# imported on first use, not at import time, because importing scipy.optimize costs ~0.2 s of
# every process start-up. ``None`` means "not available" (tests set it to force the fallback).
_UNLOADED: Any = object()
_brentq: Any = _UNLOADED
_ndtr: Any = _UNLOADED


def _load_scipy() -> None:
    global _brentq, _ndtr
    try:
        from scipy.optimize import brentq
        from scipy.special import ndtr
    except ImportError:  # pragma: no cover - exercised only where scipy is absent
        brentq = ndtr = None
    if _brentq is _UNLOADED:
        _brentq = brentq
    if _ndtr is _UNLOADED:
        _ndtr = ndtr


DAYS_PER_YEAR = 365.0
VOL_MIN = 1e-6
VOL_MAX = 10.0  # 1000 % annualised: beyond this a quoted price is noise, not information
_SQRT2 = math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)

_VALID_TYPES = ("CE", "PE")


@dataclass(frozen=True, slots=True)
class Greeks:
    """Per-unit (one share of underlying) greeks of one option.

    delta: dV/dS; gamma: d2V/dS2; theta: value change per calendar day;
    vega: value change per 1 vol point (0.01); rho: value change per 1 % rate (0.01).
    """

    delta: float
    gamma: float
    theta: float
    vega: float
    rho: float


@dataclass(frozen=True, slots=True)
class GreeksArray:
    """Vectorised :class:`Greeks` (same conventions), one element per option."""

    delta: np.ndarray
    gamma: np.ndarray
    theta: np.ndarray
    vega: np.ndarray
    rho: np.ndarray


# --------------------------------------------------------------------------- helpers


def _is_call(option_type: str) -> bool:
    if option_type not in _VALID_TYPES:
        raise ValidationFailed(f"option_type must be CE or PE, got {option_type!r}", {"field": "option_type"})
    return option_type == "CE"


def norm_cdf(x: float) -> float:
    """Standard normal CDF (via erf, accurate to double precision)."""
    return 0.5 * (1.0 + math.erf(x / _SQRT2))


def norm_pdf(x: float) -> float:
    return _INV_SQRT2PI * math.exp(-0.5 * x * x)


_erf_vec = np.frompyfunc(math.erf, 1, 1)


def _norm_cdf_arr(x: np.ndarray) -> np.ndarray:
    if _ndtr is _UNLOADED:
        _load_scipy()
    if _ndtr is not None:
        return _ndtr(x)
    return 0.5 * (1.0 + _erf_vec(np.asarray(x) / _SQRT2).astype(np.float64))


def _norm_pdf_arr(x: np.ndarray) -> np.ndarray:
    return _INV_SQRT2PI * np.exp(-0.5 * x * x)


def _validate_scalar(spot: float, strike: float, t: float, vol: float) -> None:
    if not (spot > 0 and strike > 0):
        raise ValidationFailed("spot and strike must be positive", {"spot": spot, "strike": strike})
    if vol < 0 or math.isnan(vol):
        raise ValidationFailed("vol must be >= 0", {"vol": vol})
    if math.isnan(t):
        raise ValidationFailed("t_years must be a number", {"t_years": t})


def _d1_d2(spot: float, strike: float, t: float, rate: float, vol: float, q: float) -> tuple[float, float]:
    sig_sqrt_t = vol * math.sqrt(t)
    d1 = (math.log(spot / strike) + (rate - q + 0.5 * vol * vol) * t) / sig_sqrt_t
    return d1, d1 - sig_sqrt_t


# --------------------------------------------------------------------------- scalar API


def bs_price(
    spot: Any, strike: Any, t_years: Any, rate: Any, vol: Any, option_type: str, q: Any = 0.0
) -> float:
    """Black–Scholes–Merton price of a European call (``CE``) or put (``PE``)."""
    is_call = _is_call(option_type)
    s, k, t, r, v, qq = float(spot), float(strike), float(t_years), float(rate), float(vol), float(q)
    _validate_scalar(s, k, t, v)
    if t <= 0.0:
        return max(s - k, 0.0) if is_call else max(k - s, 0.0)
    df_r = math.exp(-r * t)
    df_q = math.exp(-qq * t)
    if v * math.sqrt(t) < 1e-12:
        fwd_intrinsic = s * df_q - k * df_r
        return max(fwd_intrinsic, 0.0) if is_call else max(-fwd_intrinsic, 0.0)
    d1, d2 = _d1_d2(s, k, t, r, v, qq)
    if is_call:
        return s * df_q * norm_cdf(d1) - k * df_r * norm_cdf(d2)
    return k * df_r * norm_cdf(-d2) - s * df_q * norm_cdf(-d1)


def bs_greeks(
    spot: Any, strike: Any, t_years: Any, rate: Any, vol: Any, option_type: str, q: Any = 0.0
) -> Greeks:
    """Greeks per unit of underlying: theta per calendar day, vega per vol point, rho per 1 %."""
    is_call = _is_call(option_type)
    s, k, t, r, v, qq = float(spot), float(strike), float(t_years), float(rate), float(vol), float(q)
    _validate_scalar(s, k, t, v)
    if t <= 0.0:
        # Expired: the option is its intrinsic value; delta is the step (0.5 exactly at the strike).
        if s == k:
            delta = 0.5 if is_call else -0.5
        else:
            delta = (1.0 if s > k else 0.0) if is_call else (-1.0 if s < k else 0.0)
        return Greeks(delta, 0.0, 0.0, 0.0, 0.0)
    df_r = math.exp(-r * t)
    df_q = math.exp(-qq * t)
    if v * math.sqrt(t) < 1e-12:
        # Zero vol: deterministic forward payoff; theta is the carry of the discounted payoff.
        itm = (s * df_q > k * df_r) if is_call else (k * df_r > s * df_q)
        if not itm:
            return Greeks(0.0, 0.0, 0.0, 0.0, 0.0)
        sign = 1.0 if is_call else -1.0
        theta_yr = sign * (qq * s * df_q - r * k * df_r)
        rho = sign * k * t * df_r / 100.0
        return Greeks(sign * df_q, 0.0, theta_yr / DAYS_PER_YEAR, 0.0, rho)
    sqrt_t = math.sqrt(t)
    d1, d2 = _d1_d2(s, k, t, r, v, qq)
    pdf_d1 = norm_pdf(d1)
    gamma = df_q * pdf_d1 / (s * v * sqrt_t)
    vega = s * df_q * pdf_d1 * sqrt_t / 100.0
    decay = -s * df_q * pdf_d1 * v / (2.0 * sqrt_t)
    if is_call:
        delta = df_q * norm_cdf(d1)
        theta_yr = decay - r * k * df_r * norm_cdf(d2) + qq * s * df_q * norm_cdf(d1)
        rho = k * t * df_r * norm_cdf(d2) / 100.0
    else:
        delta = -df_q * norm_cdf(-d1)
        theta_yr = decay + r * k * df_r * norm_cdf(-d2) - qq * s * df_q * norm_cdf(-d1)
        rho = -k * t * df_r * norm_cdf(-d2) / 100.0
    return Greeks(delta, gamma, theta_yr / DAYS_PER_YEAR, vega, rho)


def price_bounds(
    spot: float, strike: float, t_years: float, rate: float, option_type: str, q: float = 0.0
) -> tuple[float, float]:
    """No-arbitrage (lower, upper) bounds of a European option price."""
    is_call = _is_call(option_type)
    t = max(float(t_years), 0.0)
    s_fwd = float(spot) * math.exp(-float(q) * t)
    k_disc = float(strike) * math.exp(-float(rate) * t)
    if is_call:
        return max(s_fwd - k_disc, 0.0), s_fwd
    return max(k_disc - s_fwd, 0.0), k_disc


def implied_vol(
    price: Any,
    spot: Any,
    strike: Any,
    t: Any,
    rate: Any,
    option_type: str,
    q: Any = 0.0,
    *,
    tol: float = 1e-10,
    max_iter: int = 200,
) -> float:
    """Volatility that reproduces ``price``.

    Uses Brent's method (scipy) when available, else a Newton iteration safeguarded by a
    bisection bracket. Raises :class:`ValidationFailed` when the price is outside the
    no-arbitrage bounds (so no volatility can explain it) or the option is expired.
    """
    p, s, k, tt, r, qq = float(price), float(spot), float(strike), float(t), float(rate), float(q)
    _is_call(option_type)
    _validate_scalar(s, k, tt, 0.0)
    if tt <= 0.0:
        raise ValidationFailed("cannot imply volatility of an expired option", {"t_years": tt})
    lo_b, hi_b = price_bounds(s, k, tt, r, option_type, qq)
    eps = 1e-12 * max(1.0, s)
    if not (lo_b + eps < p < hi_b - eps):
        raise ValidationFailed(
            "price outside no-arbitrage bounds; no implied volatility",
            {"price": p, "lower": lo_b, "upper": hi_b},
        )

    def f(v: float) -> float:
        return bs_price(s, k, tt, r, v, option_type, qq) - p

    lo, hi = VOL_MIN, 1.0
    while f(hi) < 0.0:
        lo, hi = hi, hi * 2.0
        if hi > VOL_MAX:
            raise ValidationFailed("implied volatility above maximum", {"price": p, "max_vol": VOL_MAX})
    if f(lo) > 0.0:
        # Price so close to the lower bound that even VOL_MIN over-prices it.
        return VOL_MIN
    if _brentq is _UNLOADED:
        _load_scipy()
    if _brentq is not None:
        return float(_brentq(f, lo, hi, xtol=tol, rtol=4 * np.finfo(float).eps, maxiter=max_iter))
    return _newton_bisect(f, s, k, tt, r, option_type, qq, lo, hi, tol, max_iter)


def _newton_bisect(
    f: Any,
    s: float,
    k: float,
    t: float,
    r: float,
    option_type: str,
    q: float,
    lo: float,
    hi: float,
    tol: float,
    max_iter: int,
) -> float:
    """Newton steps on vol kept inside a shrinking [lo, hi] bracket (f(lo) < 0 < f(hi))."""
    # Manaster–Koehler starting point (inflection of price in vol), clipped into the bracket.
    v = min(max(math.sqrt(2.0 * abs(math.log(s / k) + r * t) / t), 0.1), hi) if t > 0 else 0.2
    v = min(max(v, lo), hi)
    for _ in range(max_iter):
        fv = f(v)
        if abs(fv) < 1e-14 * max(1.0, s):
            return v
        if fv < 0.0:
            lo = v
        else:
            hi = v
        vega = bs_greeks(s, k, t, r, v, option_type, q).vega * 100.0
        nxt = v - fv / vega if vega > 1e-14 else None
        if nxt is None or not (lo < nxt < hi):
            nxt = 0.5 * (lo + hi)
        if abs(nxt - v) < tol:
            return nxt
        v = nxt
    return v


# --------------------------------------------------------------------------- vectorised API


def _as_arrays(*xs: Any) -> list[np.ndarray]:
    arrs = [np.asarray(x, dtype=np.float64) for x in xs]
    return list(np.broadcast_arrays(*arrs))


def _is_call_arr(option_type: Any, shape: tuple[int, ...]) -> np.ndarray:
    ot = np.asarray(option_type)
    if ot.dtype == bool:
        return np.broadcast_to(ot, shape)
    bad = ~np.isin(ot, _VALID_TYPES)
    if np.any(bad):
        raise ValidationFailed("option_type must be CE or PE", {"field": "option_type"})
    return np.broadcast_to(ot == "CE", shape)


def bs_price_array(
    spot: Any, strike: Any, t_years: Any, rate: Any, vol: Any, option_type: Any, q: Any = 0.0
) -> np.ndarray:
    """Vectorised :func:`bs_price`. ``option_type`` is "CE"/"PE", an array of them, or a bool
    array (True = call). All arguments broadcast together."""
    s, k, t, r, v, qq = _as_arrays(spot, strike, t_years, rate, vol, q)
    is_call = _is_call_arr(option_type, s.shape)
    if np.any(s <= 0) or np.any(k <= 0) or np.any(v < 0):
        raise ValidationFailed("spot and strike must be positive and vol >= 0")
    tpos = np.maximum(t, 0.0)
    df_r = np.exp(-r * tpos)
    df_q = np.exp(-qq * tpos)
    sig_sqrt_t = v * np.sqrt(tpos)
    live = sig_sqrt_t >= 1e-12
    safe = np.where(live, sig_sqrt_t, 1.0)
    d1 = (np.log(s / k) + (r - qq + 0.5 * v * v) * tpos) / safe
    d2 = d1 - safe
    call = s * df_q * _norm_cdf_arr(d1) - k * df_r * _norm_cdf_arr(d2)
    put = k * df_r * _norm_cdf_arr(-d2) - s * df_q * _norm_cdf_arr(-d1)
    fwd = s * df_q - k * df_r
    dead = np.where(is_call, np.maximum(fwd, 0.0), np.maximum(-fwd, 0.0))
    return np.where(live, np.where(is_call, call, put), dead)


def bs_greeks_array(
    spot: Any, strike: Any, t_years: Any, rate: Any, vol: Any, option_type: Any, q: Any = 0.0
) -> GreeksArray:
    """Vectorised :func:`bs_greeks` (same units). Expired / zero-vol elements get the
    intrinsic-payoff greeks (delta step, rest zero except zero-vol carry theta/rho)."""
    s, k, t, r, v, qq = _as_arrays(spot, strike, t_years, rate, vol, q)
    is_call = _is_call_arr(option_type, s.shape)
    if np.any(s <= 0) or np.any(k <= 0) or np.any(v < 0):
        raise ValidationFailed("spot and strike must be positive and vol >= 0")
    tpos = np.maximum(t, 0.0)
    sqrt_t = np.sqrt(tpos)
    df_r = np.exp(-r * tpos)
    df_q = np.exp(-qq * tpos)
    sig_sqrt_t = v * sqrt_t
    live = sig_sqrt_t >= 1e-12
    safe = np.where(live, sig_sqrt_t, 1.0)
    d1 = (np.log(s / k) + (r - qq + 0.5 * v * v) * tpos) / safe
    d2 = d1 - safe
    pdf = _norm_pdf_arr(d1)
    n_d1, n_d2 = _norm_cdf_arr(d1), _norm_cdf_arr(d2)
    n_md1, n_md2 = _norm_cdf_arr(-d1), _norm_cdf_arr(-d2)
    sign = np.where(is_call, 1.0, -1.0)

    delta = np.where(is_call, df_q * n_d1, -df_q * n_md1)
    gamma = df_q * pdf / (s * safe)
    vega = s * df_q * pdf * sqrt_t / 100.0
    decay = -s * df_q * pdf * v / (2.0 * np.where(live, sqrt_t, 1.0))
    theta_call = decay - r * k * df_r * n_d2 + qq * s * df_q * n_d1
    theta_put = decay + r * k * df_r * n_md2 - qq * s * df_q * n_md1
    theta = np.where(is_call, theta_call, theta_put) / DAYS_PER_YEAR
    rho = np.where(is_call, k * tpos * df_r * n_d2, -k * tpos * df_r * n_md2) / 100.0

    # Deterministic (expired or zero-vol) elements.
    expired = t <= 0.0
    itm_fwd = np.where(is_call, s * df_q > k * df_r, k * df_r > s * df_q)
    atm_exp = expired & (s == k)
    dead_delta = np.where(itm_fwd, sign * df_q, 0.0)
    dead_delta = np.where(atm_exp, 0.5 * sign, dead_delta)
    dead_theta = np.where(itm_fwd & ~expired, sign * (qq * s * df_q - r * k * df_r) / DAYS_PER_YEAR, 0.0)
    dead_rho = np.where(itm_fwd & ~expired, sign * k * tpos * df_r / 100.0, 0.0)
    zero = np.zeros_like(s)
    return GreeksArray(
        delta=np.where(live, delta, dead_delta),
        gamma=np.where(live, gamma, zero),
        theta=np.where(live, theta, dead_theta),
        vega=np.where(live, vega, zero),
        rho=np.where(live, rho, dead_rho),
    )


def implied_vol_array(
    price: Any,
    spot: Any,
    strike: Any,
    t: Any,
    rate: Any,
    option_type: Any,
    q: Any = 0.0,
    *,
    tol: float = 1e-10,
    max_iter: int = 100,
) -> np.ndarray:
    """Vectorised implied volatility (safeguarded Newton/bisection on every element at once).

    Elements whose price is outside the no-arbitrage bounds, or that are expired, give NaN
    instead of raising, so one bad quote does not spoil a whole chain.
    """
    p, s, k, tt, r, qq = _as_arrays(price, spot, strike, t, rate, q)
    is_call = np.array(_is_call_arr(option_type, s.shape))
    tpos = np.maximum(tt, 0.0)
    s_fwd = s * np.exp(-qq * tpos)
    k_disc = k * np.exp(-r * tpos)
    lower = np.where(is_call, np.maximum(s_fwd - k_disc, 0.0), np.maximum(k_disc - s_fwd, 0.0))
    upper = np.where(is_call, s_fwd, k_disc)
    eps = 1e-12 * np.maximum(1.0, s)
    valid = (tt > 0) & (s > 0) & (k > 0) & (p > lower + eps) & (p < upper - eps)

    lo = np.full(s.shape, VOL_MIN)
    hi = np.full(s.shape, VOL_MAX)
    v = np.full(s.shape, 0.3)
    # Operate on a safe copy so invalid elements cannot produce warnings.
    s_, k_, t_ = np.where(valid, s, 1.0), np.where(valid, k, 1.0), np.where(valid, tt, 1.0)
    p_ = np.where(valid, p, 0.0)
    done = ~valid
    for _ in range(max_iter):
        f = bs_price_array(s_, k_, t_, r, v, is_call, qq) - p_
        lo = np.where(f < 0, v, lo)
        hi = np.where(f >= 0, v, hi)
        vega = bs_greeks_array(s_, k_, t_, r, v, is_call, qq).vega * 100.0
        with np.errstate(divide="ignore", invalid="ignore"):
            nxt = v - f / vega
        bad = ~np.isfinite(nxt) | (nxt < lo) | (nxt > hi)
        nxt = np.where(bad, 0.5 * (lo + hi), nxt)
        exact = np.abs(f) < 1e-14 * np.maximum(1.0, s_)
        nxt = np.where(exact, v, nxt)  # already on the root: a bisection step would move away
        converged = exact | (np.abs(nxt - v) < tol)
        v = np.where(done, v, nxt)
        done = done | converged
        if np.all(done):
            break
    return np.where(valid, v, np.nan)
