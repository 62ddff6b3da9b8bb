"""Metrics vs. hand-computed values and explicit plain-Python (empyrical-style) formulas."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from backend.domain import metrics as m

EQUITY = [100.0, 110.0, 99.0, 108.9, 120.0, 90.0, 95.0]
RETURNS = [0.01, -0.02, 0.015, 0.003, -0.007, 0.02, -0.011, 0.004]


def test_total_return_and_returns() -> None:
    assert m.total_return(EQUITY) == pytest.approx(-0.05)
    np.testing.assert_allclose(m.returns_from_equity([100, 110, 99]), [0.10, -0.10])


def test_cagr_by_periods_and_by_dates() -> None:
    # 252 bars per year, 505 points = 504 periods = 2 years: (121/100)^(1/2) - 1 = 10 %
    eq = np.linspace(100, 121, 505)
    assert m.cagr(eq, 252) == pytest.approx(0.10)
    dates = np.array(["2020-01-01", "2022-01-01"], dtype="datetime64[D]")  # 731 days
    assert m.cagr([100.0, 121.0], dates=dates) == pytest.approx(1.21 ** (365.25 / 731) - 1)


def test_volatility_sharpe_sortino_reference_formulas() -> None:
    mean = statistics.fmean(RETURNS)
    sd = statistics.stdev(RETURNS)  # sample (ddof=1)
    assert m.annual_volatility(RETURNS) == pytest.approx(sd * math.sqrt(252))
    assert m.sharpe_ratio(RETURNS) == pytest.approx(mean / sd * math.sqrt(252))
    rf_p = 1.03 ** (1 / 252) - 1
    ex = [r - rf_p for r in RETURNS]
    assert m.sharpe_ratio(RETURNS, risk_free=0.03) == pytest.approx(
        statistics.fmean(ex) / statistics.stdev(ex) * math.sqrt(252)
    )
    downside = math.sqrt(sum(min(r, 0) ** 2 for r in RETURNS) / len(RETURNS)) * math.sqrt(252)
    assert m.sortino_ratio(RETURNS) == pytest.approx(mean * 252 / downside)
    assert math.isnan(m.sharpe_ratio([0.01, 0.01, 0.01]))


def test_drawdown_curve_and_max_drawdown() -> None:
    dd = m.drawdown_curve(EQUITY)
    # peaks: 100, 110, 110, 110, 120, 120, 120
    expected = [0, 0, 1 - 99 / 110, 1 - 108.9 / 110, 0, 1 - 90 / 120, 1 - 95 / 120]
    np.testing.assert_allclose(dd, expected)
    mdd, dur = m.max_drawdown(EQUITY)
    assert mdd == pytest.approx(0.25)
    # spells: bars 1->4 (recovered, 3 bars) and 4->6 (open at the end, 2 bars)
    assert dur == 3
    assert m.max_drawdown([1, 2, 3]) == (0.0, 0)
    assert m.max_drawdown([3, 2, 1, 1, 1, 1])[1] == 5


def test_calmar() -> None:
    eq = np.concatenate([np.linspace(100, 150, 253), np.linspace(150, 120, 252)])
    years = 504 / 252
    expected_cagr = (120 / 100) ** (1 / years) - 1
    assert m.calmar_ratio(eq) == pytest.approx(expected_cagr / 0.2)


def test_var_historical_and_parametric() -> None:
    r = [i / 100 - 0.5 for i in range(101)]  # -0.50 .. 0.50 evenly
    assert m.historical_var(r, 0.95) == pytest.approx(0.45)  # 5th percentile is -0.45
    assert m.historical_var(r, 0.99) == pytest.approx(0.49)
    mean, sd = statistics.fmean(RETURNS), statistics.stdev(RETURNS)
    assert m.parametric_var(RETURNS, 0.95) == pytest.approx(-(mean - 1.6448536269514722 * sd))
    assert m.parametric_var(RETURNS, 0.99) == pytest.approx(-(mean - 2.3263478740408408 * sd))


def test_trade_statistics() -> None:
    pnl = [100.0, -50.0, 30.0, -20.0, 0.0]
    assert m.win_rate(pnl) == pytest.approx(0.4)
    assert m.profit_factor(pnl) == pytest.approx(130 / 70)
    assert m.expectancy(pnl) == pytest.approx(12.0)
    assert m.sqn(pnl) == pytest.approx(math.sqrt(5) * 12.0 / statistics.stdev(pnl))
    assert math.isnan(m.profit_factor([1.0, 2.0]))
    assert math.isnan(m.win_rate([]))


def test_exposure() -> None:
    assert m.exposure([0, 1, 1, -2, 0]) == pytest.approx(0.6)
    assert m.exposure([True, False]) == pytest.approx(0.5)
