"""GOOG parity with backtesting.py 0.6.6 (reference figures recorded once; this test does not import it).

Reference: backtesting==0.6.6, ``Backtest(df, SmaCross, cash=10_000, commission=0.002,
exclusive_orders=False, trade_on_close=False, finalize_trades=False)`` where SmaCross buys on
``crossover(sma10, sma20)`` and calls ``position.close()`` on ``crossover(sma20, sma10)`` (the exact
script is in docs/backtesting.md). Tuples: (EntryBar, ExitBar, EntryPrice, ExitPrice, Size, PnL, ReturnPct).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.domain.backtest import BacktestConfig, load_ohlcv_csv, run_backtest
from backend.domain.strategies import StrategyFactory

GOOG = Path(__file__).resolve().parents[2] / "data" / "GOOG.csv"

REF_FINAL_EQUITY = 63341.19135999998
REF_EQUITY_PEAK = 63392.67136
REF_COMMISSIONS = 5799.2992
REF_OPEN_TRADE = (2087, 702.24, 78)  # entry bar, entry price, size: still open after the last bar
REF_MAX_DRAWDOWN = 0.20017341  # "Max. Drawdown [%]" -20.017341
REF_CAGR = 0.24157147  # "CAGR [%]" 24.157147
REF_WIN_RATE = 0.60869565
REF_PROFIT_FACTOR = 3.685039
REF_EXPECTANCY = 0.04462038
REF_SQN = 2.162333
REF_AVG_TRADE = 0.03822701
REF_BEST, REF_WORST = 0.56918681, -0.12647119

REF_TRADES = [
    (75, 85, 179.13, 182.0, 55, 118.12570000000025, 0.01198983978116454),
    (88, 110, 187.45, 179.27, 53, -472.41231999999883, -0.047551026940517334),
    (119, 129, 196.96, 193.3, 48, -213.14495999999986, -0.022545288383428057),
    (157, 242, 187.73, 295.55, 50, 5342.6720000000005, 0.5691868108453633),
    (265, 293, 285.89, 297.5, 51, 532.6042200000007, 0.0365288047850573),
    (300, 333, 346.28, 412.5, 44, 2846.907360000001, 0.1868500635324017),
    (334, 336, 417.04, 425.34, 43, 284.45531999999804, 0.015862363322462856),
    (338, 363, 427.86, 435.0, 43, 232.8140399999994, 0.01265432618146125),
    (387, 394, 384.3, 337.14, 48, -2332.9382400000013, -0.1264711943793912),
    (406, 432, 389.19, 395.11, 41, 178.40740000000065, 0.011180657262519735),
    (454, 484, 387.75, 386.14, 42, -132.62676000000056, -0.00814385557704713),
    (509, 515, 373.08, 379.87, 43, 227.21630000000087, 0.014163450198348979),
    (517, 582, 379.39, 481.94, 43, 4335.5756200000005, 0.265761722765492),
    (603, 618, 497.2, 482.61, 42, -695.0840399999989, -0.03328563958165722),
    (654, 684, 463.55, 466.15, 43, 31.84579999999852, 0.0015976701542444018),
    (696, 739, 479.7, 508.53, 42, 1127.8486799999991, 0.055979862414008666),
    (765, 819, 515.02, 629.59, 41, 4603.511980000002, 0.21801246553531906),
    (830, 843, 692.73, 694.99, 37, -19.071280000000343, -0.0007440705614020311),
    (909, 947, 447.74, 546.96, 57, 5542.144200000002, 0.21715861884129184),
    (958, 961, 549.56, 561.49, 57, 553.3503000000036, 0.01766485916005542),
    (1005, 1015, 506.99, 469.75, 63, -2469.1892400000006, -0.07730621905757509),
    (1059, 1061, 356.16, 353.44, 83, -343.5536000000023, -0.011621743036837454),
    (1087, 1103, 304.17, 332.98, 96, 2643.4272, 0.09052733668672126),
    (1105, 1114, 318.28, 298.04, 100, -2147.263999999995, -0.06746462234510482),
    (1121, 1138, 334.29, 345.96, 88, 907.2359999999965, 0.030839989230907187),
    (1156, 1199, 346.5, 391.95, 88, 3869.632799999999, 0.12690649350649338),
    (1203, 1219, 418.73, 406.65, 82, -1125.9223200000033, -0.03279144078523168),
    (1236, 1317, 433.0, 562.73, 77, 9835.86758, 0.29500817551963054),
    (1319, 1362, 569.56, 593.34, 75, 1609.0650000000064, 0.03766802443991869),
    (1387, 1412, 543.0, 562.83, 82, 1444.7038800000032, 0.032446298342541466),
    (1419, 1430, 567.49, 544.97, 81, -2004.3385199999984, -0.04360415161500639),
    (1464, 1475, 494.48, 463.44, 89, -2933.0697600000017, -0.06664746804724159),
    (1489, 1512, 461.03, 467.97, 89, 452.2980000000049, 0.011023143830119635),
    (1529, 1574, 479.95, 585.0, 86, 8851.128600000002, 0.21443921241796024),
    (1594, 1626, 592.85, 611.0, 85, 1338.095499999998, 0.026553597031289553),
    (1636, 1645, 625.63, 599.8, 82, -2319.030520000003, -0.04520381055895664),
    (1668, 1677, 593.0, 545.29, 83, -4148.886140000003, -0.08429440134907255),
    (1696, 1700, 534.61, 532.73, 85, -341.24779999999964, -0.007509549017040466),
    (1734, 1757, 532.95, 561.38, 84, 2204.272559999996, 0.049237902242236564),
    (1778, 1794, 531.4, 509.85, 89, -2103.292499999996, -0.044472149040270935),
    (1805, 1833, 580.19, 579.37, 77, -241.71224000000387, -0.005410503455764543),
    (1841, 1868, 621.04, 640.99, 72, 1254.6676800000032, 0.028059287646528378),
    (1886, 1908, 611.54, 620.89, 75, 516.3855000000017, 0.011258691173104027),
    (1911, 1927, 634.61, 647.55, 73, 757.4246399999956, 0.01634969508832198),
    (1947, 1960, 610.35, 588.72, 77, -1850.1667799999998, -0.03936780535758169),
    (1983, 2059, 580.01, 705.58, 78, 9593.907960000004, 0.21206327477112477),
]


@pytest.fixture(scope="module")
def result():
    data = load_ohlcv_csv(GOOG)
    strategy = StrategyFactory.create("sma_crossover", {"fast": 10, "slow": 20})
    cfg = BacktestConfig(cash=10_000, commission=0.002, long_only=True, fractional=False)
    return run_backtest(data, strategy, cfg)


def test_trade_count_bars_prices_sizes(result) -> None:
    assert len(result.trades) == len(REF_TRADES) == 46
    for ours, ref in zip(result.trades, REF_TRADES, strict=True):
        assert (ours.entry_bar, ours.exit_bar) == (ref[0], ref[1])
        assert ours.entry_price == pytest.approx(ref[2], rel=1e-12)
        assert ours.exit_price == pytest.approx(ref[3], rel=1e-12)
        assert ours.size == ref[4]
        assert ours.pnl == pytest.approx(ref[5], rel=1e-6)
        assert ours.return_pct == pytest.approx(ref[6], rel=1e-6)


def test_final_equity_and_open_trade(result) -> None:
    assert result.metrics["final_equity"] == pytest.approx(REF_FINAL_EQUITY, rel=1e-6)
    assert result.metrics["peak_equity"] == pytest.approx(REF_EQUITY_PEAK, rel=1e-6)
    assert result.metrics["commissions"] == pytest.approx(REF_COMMISSIONS, rel=1e-6)
    ot = result.open_trade
    assert ot is not None and (ot.entry_bar, ot.entry_price, ot.size) == REF_OPEN_TRADE
    assert ot.exit_price == 806.19  # marked at the last close


def test_summary_metrics_match_backtesting_py(result) -> None:
    m = result.metrics
    assert m["num_trades"] == 46
    assert m["max_drawdown"] == pytest.approx(REF_MAX_DRAWDOWN, rel=1e-6)
    assert m["cagr"] == pytest.approx(REF_CAGR, rel=1e-6)
    assert m["win_rate"] == pytest.approx(REF_WIN_RATE, rel=1e-6)
    assert m["profit_factor"] == pytest.approx(REF_PROFIT_FACTOR, rel=1e-6)
    assert m["expectancy"] == pytest.approx(REF_EXPECTANCY, rel=1e-6)
    assert m["sqn"] == pytest.approx(REF_SQN, rel=1e-6)
    assert m["avg_trade"] == pytest.approx(REF_AVG_TRADE, rel=1e-6)
    assert (m["best_trade"], m["worst_trade"]) == (
        pytest.approx(REF_BEST, rel=1e-6),
        pytest.approx(REF_WORST, rel=1e-6),
    )
