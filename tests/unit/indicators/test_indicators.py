"""Indicators vs. plain-Python textbook computations (reference written out here, not reused)."""

from __future__ import annotations

import math
import random
import statistics

import numpy as np
import pytest

from backend.domain import indicators as ind

# Fixed series: Wilder's textbook RSI example closes (New Concepts in Technical Trading Systems style data)
CLOSES = [
    44.34,
    44.09,
    44.15,
    43.61,
    44.33,
    44.83,
    45.10,
    45.42,
    45.84,
    46.08,
    45.89,
    46.03,
    45.61,
    46.28,
    46.28,
    46.00,
    46.03,
    46.41,
    46.22,
    45.64,
    46.21,
    46.25,
    45.71,
    46.45,
    45.78,
    45.35,
    44.03,
    44.18,
    44.22,
    44.57,
    43.42,
    42.66,
    43.13,
]


def long_series(n: int = 400, seed: int = 7) -> list[float]:
    rnd = random.Random(seed)
    x, out = 100.0, []
    for _ in range(n):
        x += rnd.gauss(0, 1)
        out.append(x)
    return out


def ref_ema(x: list[float], n: int, alpha: float | None = None, start: int = 0) -> list[float]:
    a = alpha if alpha is not None else 2 / (n + 1)
    out = [math.nan] * len(x)
    seed_i = start + n - 1
    out[seed_i] = sum(x[start : seed_i + 1]) / n
    for i in range(seed_i + 1, len(x)):
        out[i] = a * x[i] + (1 - a) * out[i - 1]
    return out


def ref_rsi(c: list[float], n: int) -> list[float]:
    out = [math.nan] * len(c)
    gains = [max(c[i] - c[i - 1], 0) for i in range(1, len(c))]
    losses = [max(c[i - 1] - c[i], 0) for i in range(1, len(c))]
    ag, al = sum(gains[:n]) / n, sum(losses[:n]) / n
    for i in range(n, len(c)):
        if i > n:
            ag = (ag * (n - 1) + gains[i - 1]) / n
            al = (al * (n - 1) + losses[i - 1]) / n
        out[i] = 100.0 if al == 0 else 100 - 100 / (1 + ag / al)
    return out


def assert_close(a: np.ndarray, b: list[float], tol: float = 1e-9) -> None:
    b_arr = np.array(b)
    assert np.array_equal(np.isnan(a), np.isnan(b_arr))
    m = ~np.isnan(b_arr)
    np.testing.assert_allclose(a[m], b_arr[m], rtol=tol, atol=tol)


def test_sma_hand_values() -> None:
    out = ind.sma([1, 2, 3, 4, 5], 3)
    assert np.isnan(out[:2]).all()
    np.testing.assert_allclose(out[2:], [2.0, 3.0, 4.0])


def test_rsi_wilder_textbook_value() -> None:
    out = ind.rsi(CLOSES, 14)
    assert np.isnan(out[:14]).all()
    # Widely published first value of this example (avg gain 0.2386 / avg loss 0.0996): RSI ~ 70.46
    assert out[14] == pytest.approx(70.464, abs=0.01)
    assert_close(out, ref_rsi(CLOSES, 14))


@pytest.mark.parametrize("n", [2, 5, 14, 50])
def test_rsi_matches_recursion_long_series(n: int) -> None:
    x = long_series()
    assert_close(ind.rsi(x, n), ref_rsi(x, n))


def test_rsi_flat_and_monotonic() -> None:
    assert ind.rsi([5.0] * 20, 14)[-1] == 50.0
    assert ind.rsi(list(range(1, 21)), 14)[-1] == 100.0


@pytest.mark.parametrize("n", [2, 3, 12, 26, 100])
def test_ema_matches_recursion(n: int) -> None:
    x = long_series(3000)
    assert_close(ind.ema(x, n), ref_ema(x, n))


def test_macd_matches_recursion() -> None:
    x = long_series(500, seed=3)
    line, sig, hist = ind.macd(x, 12, 26, 9)
    fast, slow = ref_ema(x, 12), ref_ema(x, 26)
    ref_line = [f - s for f, s in zip(fast, slow, strict=True)]
    ref_sig = ref_ema([0.0 if math.isnan(v) else v for v in ref_line], 9, start=25)
    assert_close(line, ref_line)
    assert_close(sig, ref_sig)
    assert np.isnan(sig[:33]).all() and not np.isnan(sig[33])
    np.testing.assert_allclose(hist[33:], np.array(ref_line[33:]) - np.array(ref_sig[33:]), atol=1e-9)


def test_bollinger_population_std() -> None:
    x = long_series(60)
    mid, up, lo = ind.bollinger(x, 20, 2.0)
    for i in range(19, 60):
        w = x[i - 19 : i + 1]
        m, sd = statistics.fmean(w), statistics.pstdev(w)
        assert mid[i] == pytest.approx(m, rel=1e-12)
        assert up[i] == pytest.approx(m + 2 * sd, rel=1e-12)
        assert lo[i] == pytest.approx(m - 2 * sd, rel=1e-12)
    assert np.isnan(mid[:19]).all()


def test_vwap_cumulative_and_session_reset() -> None:
    h, lo, c, v = [11, 12, 13, 14], [9, 10, 11, 12], [10, 11, 12, 13], [100, 200, 0, 100]
    tp = [(a + b + d) / 3 for a, b, d in zip(h, lo, c, strict=True)]
    out = ind.vwap(h, lo, c, v)
    assert out[1] == pytest.approx((tp[0] * 100 + tp[1] * 200) / 300)
    assert out[3] == pytest.approx((tp[0] * 100 + tp[1] * 200 + tp[3] * 100) / 400)
    sess = ind.vwap(h, lo, c, v, session=["d1", "d1", "d2", "d2"])
    assert np.isnan(sess[2])  # new session, no volume yet
    assert sess[3] == pytest.approx(tp[3])
    assert sess[1] == pytest.approx(out[1])


def test_atr_wilder_matches_recursion() -> None:
    rnd = random.Random(11)
    c = long_series(200, seed=5)
    h = [x + rnd.random() for x in c]
    lo = [x - rnd.random() for x in c]
    tr = [math.nan] + [max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1])) for i in range(1, 200)]
    ref = ref_ema(tr, 14, alpha=1 / 14, start=1)
    assert_close(ind.atr(h, lo, c, 14), ref)
    assert np.isnan(ind.atr(h, lo, c, 14)[:14]).all()


def test_donchian_helpers_and_bad_period() -> None:
    np.testing.assert_array_equal(ind.rolling_max([1, 3, 2, 5, 4], 2)[1:], [3, 3, 5, 5])
    np.testing.assert_array_equal(ind.rolling_min([1, 3, 2, 5, 4], 3)[2:], [1, 2, 2])
    with pytest.raises(ValueError):
        ind.sma([1, 2, 3], 0)


def test_short_input_all_nan() -> None:
    assert np.isnan(ind.sma([1.0, 2.0], 5)).all()
    assert np.isnan(ind.rsi([1.0, 2.0], 14)).all()
    assert np.isnan(ind.ema([1.0], 3)).all()
