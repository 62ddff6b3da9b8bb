"""Indicator implementations. See the package docstring for conventions."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike

_F = TypeVar("_F", bound=Callable[..., Any])
_SHARED: ContextVar[dict | None] = ContextVar("indicator_results", default=None)


@contextmanager
def shared_results() -> Iterator[None]:
    """Within the block, an indicator called again on the same immutable input arrays with the
    same arguments returns the first call's (read-only) result instead of recomputing it.

    For parameter sweeps: a 10 x 10 grid of SMA crossovers needs 20 moving averages, not 200.
    Only inputs that cannot change are shared: every array argument, and every array it is a
    view of, must be read-only (``setflags(write=False)``); anything else is computed as usual.
    """
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def _immutable(a: np.ndarray) -> bool:
    base: Any = a
    while isinstance(base, np.ndarray):
        if base.flags.writeable:
            return False
        base = base.base
    return True


def _key(v: Any) -> Any:
    # an immutable array is known by its memory and layout, so a fresh view of the same bars hits
    if isinstance(v, np.ndarray):
        return ("array", v.__array_interface__["data"][0], v.shape, v.strides, v.dtype.str)
    return v


def _freeze(out: Any) -> None:
    for a in out if isinstance(out, tuple) else (out,):
        if isinstance(a, np.ndarray):
            a.setflags(write=False)


def _shareable(fn: _F) -> _F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        cache = _SHARED.get()
        if cache is None:
            return fn(*args, **kwargs)
        values = (*args, *kwargs.values())
        arrays = [v for v in values if isinstance(v, np.ndarray)]
        if not arrays or not all(_immutable(a) for a in arrays):
            return fn(*args, **kwargs)
        key = (
            fn.__name__,
            tuple(_key(v) for v in args),
            tuple(sorted((k, _key(v)) for k, v in kwargs.items())),
        )
        try:
            hit = cache.get(key)
        except TypeError:  # an unhashable argument: nothing to share
            return fn(*args, **kwargs)
        if hit is None:
            out = fn(*args, **kwargs)
            _freeze(out)  # no caller can alter the shared copy
            hit = cache[key] = (arrays, out)  # holding the inputs keeps their memory from being reused
        return hit[1]

    return wrapper  # type: ignore[return-value]


def _arr(x: ArrayLike) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError("indicator input must be one-dimensional")
    return a


def _check_period(period: int, name: str = "period") -> int:
    if int(period) != period or period < 1:
        raise ValueError(f"{name} must be a positive integer, got {period!r}")
    return int(period)


def _nan(n: int) -> np.ndarray:
    return np.full(n, np.nan)


@_shareable
def sma(x: ArrayLike, period: int) -> np.ndarray:
    """Simple moving average: ``mean(x[i-period+1 .. i])``; first ``period-1`` values NaN.

    Each window is summed directly (numpy pairwise summation over a strided view) rather than
    by a running cumulative sum, so values carry no drift over long series and crossover ties
    are decided on exact-as-possible averages.
    """
    x = _arr(x)
    period = _check_period(period)
    out = np.empty(x.size)
    out[: period - 1] = np.nan
    if x.size >= period:
        sums = out[period - 1 :]  # summed and divided in place: no full-length temporaries
        if period <= 128:
            _window_sums(x, period, out=sums)
        else:
            np.sum(sliding_window_view(x, period), axis=1, out=sums)
        sums /= period
    return out


def _window_sums(x: np.ndarray, k: int, block: int = 16384, out: np.ndarray | None = None) -> np.ndarray:
    """``sliding_window_view(x, k).sum(axis=1)`` bit for bit, several times faster, for ``k <= 128``.

    numpy sums each window of up to 128 values with 8 partial sums (element j into partial
    ``j % 8`` for the first ``k - k % 8``), combined ``((p0+p1)+(p2+p3))+((p4+p5)+(p6+p7))``, then
    the rest added in order (sequentially when ``k < 8``). The same additions in the same order
    are done here, a cache-sized block at a time, so crossover ties are decided exactly as before.
    Partial ``j`` of window ``w`` is ``z[w + j]`` with ``z[q] = x[q] + x[q+8] + ...``, and the pair
    sums ``z[q] + z[q+1]`` and the quad sums are shared by neighbouring windows: each is computed
    once for all windows instead of once per window.
    """
    m = x.size - k + 1
    if out is None:
        out = np.empty(m)
    if k < 8:
        for s in range(0, m, block):
            b = min(block, m - s)
            acc = out[s : s + b]
            np.copyto(acc, x[s : s + b])
            for j in range(1, k):
                acc += x[s + j : s + j + b]
        return out
    full = k - k % 8
    rows = full // 8
    width = min(block, m) + 7
    z_buf = np.empty(width) if rows > 1 else None
    pairs_buf = np.empty(width - 1)
    quads_buf = np.empty(width - 3)
    for s in range(0, m, block):
        b = min(block, m - s)
        if z_buf is None:
            z = x[s : s + b + 7]
        else:
            z = z_buf[: b + 7]
            np.add(x[s : s + b + 7], x[s + 8 : s + b + 15], out=z)
            for r in range(2, rows):
                z += x[s + 8 * r : s + 8 * r + b + 7]
        pairs = pairs_buf[: b + 6]
        np.add(z[:-1], z[1:], out=pairs)  # p0+p1 of window w is pairs[w], p2+p3 is pairs[w+2] ...
        quads = quads_buf[: b + 4]
        np.add(pairs[:-2], pairs[2:], out=quads)  # (p0+p1)+(p2+p3) is quads[w], (p4+p5)+(p6+p7) quads[w+4]
        acc = out[s : s + b]
        np.add(quads[:-4], quads[4:], out=acc)
        for i in range(full, k):
            acc += x[s + i : s + i + b]
    return out


@_shareable
def rolling_std(x: ArrayLike, period: int, ddof: int = 0) -> np.ndarray:
    """Rolling standard deviation (population, ``ddof=0``, by default); first ``period-1`` NaN."""
    x = _arr(x)
    period = _check_period(period)
    out = _nan(x.size)
    if x.size >= period:
        out[period - 1 :] = sliding_window_view(x, period).std(axis=1, ddof=ddof)
    return out


@_shareable
def rolling_max(x: ArrayLike, period: int) -> np.ndarray:
    """Highest value of the last ``period`` bars including the current one."""
    x = _arr(x)
    period = _check_period(period)
    out = _nan(x.size)
    if x.size >= period:
        out[period - 1 :] = sliding_window_view(x, period).max(axis=1)
    return out


@_shareable
def rolling_min(x: ArrayLike, period: int) -> np.ndarray:
    """Lowest value of the last ``period`` bars including the current one."""
    x = _arr(x)
    period = _check_period(period)
    out = _nan(x.size)
    if x.size >= period:
        out[period - 1 :] = sliding_window_view(x, period).min(axis=1)
    return out


def linear_recursion(u: ArrayLike, b: float, y0: float) -> np.ndarray:
    """Solve ``y[k] = b * y[k-1] + u[k]`` with ``y[-1] = y0`` for all k, vectorised.

    Within blocks of ``B`` elements the closed form ``y[s+k] = b**(k+1) * (carry +
    sum_j u[s+j] * b**-(j+1))`` is evaluated with one cumulative sum; ``B`` is chosen so that
    ``b**-B <= 1e10`` which keeps the rounding error near machine precision. Only the block
    carries are chained in a Python loop (one step per block, e.g. ~400 steps for 1M bars at
    ``b = 0.99``).
    """
    u = _arr(u)
    m = u.size
    if m == 0:
        return u.copy()
    if not 0.0 <= b < 1.0:
        raise ValueError("decay factor b must be in [0, 1)")
    if b == 0.0:
        return u.copy()
    if b < 1e-3:
        # would give blocks of 1-3 elements; a plain recursion is as fast and exact
        y = np.empty(m)
        prev = y0
        for k in range(m):
            prev = b * prev + u[k]
            y[k] = prev
        return y
    block = max(1, min(m, int(math.log(1e-10) / math.log(b))))
    nblocks = -(-m // block)
    padded = np.zeros(nblocks * block)
    padded[:m] = u
    ub = padded.reshape(nblocks, block)
    k = np.arange(1, block + 1, dtype=np.float64)
    pw_neg = b ** (-k)  # b^-(j+1)
    pw_pos = b**k  # b^(k+1)
    partial = np.cumsum(ub * pw_neg, axis=1) * pw_pos  # block result with zero carry-in
    # chain carries: carry[i] = y at end of block i-1
    carries = np.empty(nblocks)
    bb = b**block
    prev = y0
    ends = partial[:, -1]
    for i in range(nblocks):
        carries[i] = prev
        prev = ends[i] + bb * prev
    y = partial + carries[:, None] * pw_pos[None, :]
    return y.reshape(-1)[:m]


def _ema_from(x: np.ndarray, start: int, period: int, alpha: float) -> np.ndarray:
    """EMA seeded at index ``start + period - 1`` with the SMA of ``x[start : start+period]``."""
    out = _nan(x.size)
    seed_idx = start + period - 1
    if seed_idx >= x.size:
        return out
    seed = float(np.mean(x[start : seed_idx + 1]))
    out[seed_idx] = seed
    if seed_idx + 1 < x.size:
        out[seed_idx + 1 :] = linear_recursion(alpha * x[seed_idx + 1 :], 1.0 - alpha, seed)
    return out


@_shareable
def ema(x: ArrayLike, period: int) -> np.ndarray:
    """Exponential moving average, ``alpha = 2 / (period + 1)``.

    ``ema[i] = alpha * x[i] + (1 - alpha) * ema[i-1]``, seeded at ``i = period-1`` with the SMA
    of the first ``period`` values (TA-Lib's convention); earlier values are NaN.
    """
    x = _arr(x)
    period = _check_period(period)
    return _ema_from(x, 0, period, 2.0 / (period + 1))


def _wilder(values: np.ndarray, start: int, period: int) -> np.ndarray:
    """Wilder smoothing (``alpha = 1/period``) seeded with the SMA of ``values[start:start+period]``."""
    return _ema_from(values, start, period, 1.0 / period)


@_shareable
def rsi(close: ArrayLike, period: int = 14) -> np.ndarray:
    """Relative Strength Index with Wilder smoothing.

    ``d[i] = close[i] - close[i-1]``, gain ``= max(d, 0)``, loss ``= max(-d, 0)``.
    ``avg_gain`` at ``i = period`` is the mean of gains ``1..period``; afterwards
    ``avg[i] = (avg[i-1] * (period-1) + gain[i]) / period`` (likewise for losses).
    ``RSI = 100 - 100 / (1 + avg_gain / avg_loss)``; ``avg_loss == 0`` gives 100 (50 when both
    averages are 0, a flat series). The first ``period`` values are NaN.
    """
    c = _arr(close)
    period = _check_period(period)
    out = _nan(c.size)
    if c.size <= period:
        return out
    d = np.diff(c, prepend=np.nan)
    gain = np.where(d > 0, d, 0.0)
    loss = np.where(d < 0, -d, 0.0)
    ag = _wilder(gain, 1, period)
    al = _wilder(loss, 1, period)
    valid = slice(period, None)
    g, lo = ag[valid], al[valid]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = 100.0 - 100.0 / (1.0 + g / lo)
    r = np.where(lo == 0.0, np.where(g == 0.0, 50.0, 100.0), r)
    out[valid] = r
    return out


@_shareable
def macd(
    close: ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MACD line, signal line and histogram.

    ``macd = ema(close, fast) - ema(close, slow)`` (both SMA-seeded, so defined from bar
    ``slow-1``); ``signal`` = EMA of the MACD line over its defined part, seeded with the SMA of
    its first ``signal`` values (defined from bar ``slow + signal - 2``); ``hist = macd - signal``.
    """
    c = _arr(close)
    fast = _check_period(fast, "fast")
    slow = _check_period(slow, "slow")
    signal = _check_period(signal, "signal")
    if fast >= slow:
        raise ValueError("fast period must be shorter than slow period")
    line = ema(c, fast) - ema(c, slow)
    sig = _ema_from(np.nan_to_num(line, nan=0.0), slow - 1, signal, 2.0 / (signal + 1))
    return line, sig, line - sig


@_shareable
def bollinger(
    close: ArrayLike, period: int = 20, k: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bollinger Bands ``(mid, upper, lower)``: ``mid = sma``, bands ``mid ± k * std`` (population std)."""
    c = _arr(close)
    mid = sma(c, period)
    sd = rolling_std(c, period, ddof=0)
    return mid, mid + k * sd, mid - k * sd


@_shareable
def vwap(
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    volume: ArrayLike,
    session: ArrayLike | None = None,
) -> np.ndarray:
    """Volume-weighted average price of the typical price ``(high + low + close) / 3``.

    Cumulative from the first bar, or restarting whenever the ``session`` label changes
    (e.g. pass the trading date of each intraday bar). Bars before any volume are NaN.
    """
    h, lo, c, v = _arr(high), _arr(low), _arr(close), _arr(volume)
    tp = (h + lo + c) / 3.0
    pv = np.cumsum(tp * v)
    cv = np.cumsum(v)
    if session is not None:
        s = np.asarray(session)
        starts = np.ones(s.size, dtype=bool)
        starts[1:] = s[1:] != s[:-1]
        start_idx = np.maximum.accumulate(np.where(starts, np.arange(s.size), 0))
        # subtract the running totals reached just before each session began
        base_pv = np.concatenate(([0.0], pv[:-1]))[start_idx]
        base_cv = np.concatenate(([0.0], cv[:-1]))[start_idx]
        pv = pv - base_pv
        cv = cv - base_cv
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(cv > 0, pv / cv, np.nan)


@_shareable
def true_range(high: ArrayLike, low: ArrayLike, close: ArrayLike) -> np.ndarray:
    """``max(high-low, |high-prev_close|, |low-prev_close|)``; bar 0 has no previous close: ``high-low``."""
    h, lo, c = _arr(high), _arr(low), _arr(close)
    prev = np.concatenate(([np.nan], c[:-1]))
    tr = np.fmax(h - lo, np.fmax(np.abs(h - prev), np.abs(lo - prev)))
    return tr


@_shareable
def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14) -> np.ndarray:
    """Average True Range with Wilder smoothing (TA-Lib convention).

    The first ATR, at bar ``period``, is the mean of the true ranges of bars ``1..period`` (bar 0
    is skipped as it has no previous close); then ``atr[i] = (atr[i-1]*(period-1) + tr[i]) / period``.
    """
    period = _check_period(period)
    tr = true_range(high, low, close)
    return _wilder(tr, 1, period)
