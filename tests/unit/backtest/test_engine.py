"""Backtest engine conventions on tiny hand-computed cases, plus CSV loader, sweep and chart."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from backend.domain.backtest import BacktestConfig, load_ohlcv_csv, render_chart, run_backtest, run_sweep
from backend.domain.errors import NotFound, ValidationFailed

NAN = np.nan
GOOG = Path(__file__).resolve().parents[2] / "data" / "GOOG.csv"


def bars(opens, closes=None, highs=None, lows=None):
    o = np.asarray(opens, dtype=float)
    c = np.asarray(closes if closes is not None else opens, dtype=float)
    h = np.asarray(highs) if highs is not None else np.maximum(o, c)
    lo = np.asarray(lows) if lows is not None else np.minimum(o, c)
    return {"open": o, "high": h, "low": lo, "close": c}


def test_next_open_fill_whole_units_and_equity_curve() -> None:
    data = bars([10, 11, 12, 13, 14], closes=[10.5, 11.5, 12.5, 13.5, 14.5])
    target = np.array([1, NAN, 0, NAN, NAN])  # long after bar 0 close, flat after bar 2 close
    res = run_backtest(data, target=target, cash=100, commission=0.0)
    (t,) = res.trades
    # buy at bar 1 open 11: floor(100 / 11) = 9 units; sell at bar 3 open 13
    assert (t.entry_bar, t.exit_bar, t.entry_price, t.exit_price, t.size) == (1, 3, 11.0, 13.0, 9.0)
    assert t.pnl == pytest.approx(18.0)
    assert t.return_pct == pytest.approx(13 / 11 - 1)
    # equity at close: bar1 100 + 9 * 0.5, bar2 100 + 9 * 1.5, then 118 in cash
    np.testing.assert_allclose(res.equity, [100, 104.5, 113.5, 118, 118])
    np.testing.assert_array_equal(res.position, [0, 9, 9, 0, 0])
    assert res.metrics["exposure"] == pytest.approx(0.4)
    assert res.open_trade is None


def test_commission_paid_both_sides_and_sizing_includes_it() -> None:
    data = bars([100, 100, 110, 110])
    res = run_backtest(data, target=np.array([1, NAN, 0, NAN]), cash=1000, commission=0.01)
    (t,) = res.trades
    assert t.size == 9  # floor(1000 / (100 * 1.01)) = 9
    assert t.commission == pytest.approx(9 * 100 * 0.01 + 9 * 110 * 0.01)
    assert t.pnl == pytest.approx(9 * 10 - 18.9)
    assert res.metrics["final_equity"] == pytest.approx(1000 + 90 - 18.9)


def test_signal_on_last_bar_never_fills_and_open_trade_marked_at_close() -> None:
    data = bars([10, 10, 12, 14], closes=[10, 11, 13, 15])
    res = run_backtest(data, target=np.array([NAN, 1, NAN, 0]), cash=100)
    assert res.trades == []
    ot = res.open_trade
    assert ot is not None and ot.entry_bar == 2 and ot.exit_bar is None and ot.exit_price == 15
    assert ot.pnl == pytest.approx(8 * 3)  # floor(100/12) = 8 units, marked at last close 15
    assert res.metrics["final_equity"] == pytest.approx(100 + 24)
    assert res.metrics["num_trades"] == 0


def test_long_only_ignores_shorts_long_short_reverses() -> None:
    data = bars([10, 10, 8, 8, 9])
    target = np.array([1, -1, NAN, 1, NAN])
    lo = run_backtest(data, target=target, cash=100)
    # all-in uses cash * (1 - eps) like backtesting.py, so exactly 100 / 10 buys 9 units, not 10
    assert [(t.entry_bar, t.exit_bar, t.size) for t in lo.trades] == [(1, 2, 9.0)]
    ls = run_backtest(data, target=target, cash=100, long_only=False)
    # long 9 @10 -> closed @8 (cash 82); short floor(82/8) = 10 @8 -> covered @9 at bar 4 (cash 72);
    # long again with floor(72 * (1 - eps) / 9) = 7
    assert [(t.entry_bar, t.exit_bar, t.size) for t in ls.trades] == [(1, 2, 9.0), (2, 4, -10.0)]
    assert ls.trades[1].pnl == pytest.approx(-10.0)
    assert ls.open_trade is not None and ls.open_trade.size == 7


def test_fractional_units_and_slippage() -> None:
    data = bars([10, 10, 20, 20])
    res = run_backtest(data, target=np.array([1, NAN, 0, NAN]), cash=100, fractional=True, slippage=0.01)
    (t,) = res.trades
    assert t.entry_price == pytest.approx(10.1)
    assert t.size == pytest.approx(100 / 10.1)
    assert t.exit_price == pytest.approx(19.8)
    assert res.metrics["final_equity"] == pytest.approx(100 / 10.1 * 19.8)


def test_pluggable_cost_function() -> None:
    calls = []

    def cost(side: str, qty: float, price: float) -> Decimal:
        calls.append((side, qty, price))
        return Decimal("20") + Decimal(str(qty)) * Decimal("0.5")  # flat fee + per unit

    data = bars([10, 10, 12, 12])
    res = run_backtest(data, target=np.array([1, NAN, 0, NAN]), cash=1000, commission=cost)
    (t,) = res.trades
    assert t.size == 93  # largest q with 10q + 20 + 0.5q <= 1000 -> q = 93 (976.5 + 20 > 1000 at 94)
    assert t.commission == pytest.approx((20 + 46.5) * 2)
    assert calls[-1][0] == "sell" and calls[-1][1] == 93


def test_stop_loss_intrabar_and_gap_take_profit() -> None:
    o = [100, 100, 99, 97, 96]
    data = bars(o, closes=[100, 99, 98, 96, 96], highs=[100, 101, 99, 97, 96], lows=[100, 98, 94, 95, 96])
    res = run_backtest(data, target=np.array([1, NAN, NAN, NAN, NAN]), cash=1000, stop_loss=0.05)
    (t,) = res.trades
    assert (t.exit_bar, t.exit_reason, t.exit_price) == (2, "stop_loss", 95.0)  # low 94 touched 95 stop
    assert res.open_trade is None and res.position[-1] == 0
    # gap below the stop fills at the open
    data2 = bars([100, 100, 90, 90], lows=[100, 99, 88, 89], highs=[100, 101, 92, 91])
    res2 = run_backtest(data2, target=np.array([1, NAN, NAN, NAN]), cash=1000, stop_loss=0.05)
    assert res2.trades[0].exit_price == 90.0
    data3 = bars([100, 100, 108, 108], highs=[100, 101, 115, 109], lows=[100, 99, 107, 107])
    res3 = run_backtest(data3, target=np.array([1, NAN, NAN, NAN]), cash=1000, take_profit=0.1)
    t3 = res3.trades[0]
    assert (t3.exit_reason, t3.exit_bar) == ("take_profit", 2)
    assert t3.exit_price == pytest.approx(110.0)


def test_invalid_config_rejected() -> None:
    with pytest.raises(ValidationFailed) as exc:
        run_backtest(bars([1, 2]), target=np.array([NAN, NAN]), cash=-5, stop_loss=2.0)
    assert set(exc.value.details) == {"cash", "stop_loss"}


def test_csv_loader_ok_and_errors(tmp_path: Path) -> None:
    d = load_ohlcv_csv(GOOG)
    assert d["close"].size == 2148 and str(d["time"][0])[:10] == "2004-08-19" and d["close"][0] == 100.34
    with pytest.raises(ValidationFailed) as exc:
        load_ohlcv_csv(b"date,open,high,close\n2020-01-01,1,2,1\n")
    assert exc.value.details == {"low": ["required column missing"]}
    bad = (
        b"date,open,high,low,close,volume\n"
        b"2020-01-01,1,2,1,1,10\n2020-01-02,1,x,1,1,10\n2020-01-03,1,1,2,1,5\n"
    )
    with pytest.raises(ValidationFailed) as exc:
        load_ohlcv_csv(bad)
    assert exc.value.details["rows"] == [
        {"row": 3, "column": "high", "message": "not a number: 'x'"},
        {"row": 4, "column": "low", "message": "low is above open or close"},
    ]
    with pytest.raises(ValidationFailed):
        load_ohlcv_csv(GOOG.read_bytes(), max_bytes=1000)
    with pytest.raises(ValidationFailed) as exc:
        load_ohlcv_csv(b"date,open,high,low,close\n2020-01-02,1,1,1,1\n2020-01-01,1,1,1,1\n")
    assert exc.value.details["rows"][0]["row"] == 3


def test_sweep_heatmap_progress_and_cancel() -> None:
    data = load_ohlcv_csv(GOOG)
    seen = []
    res = run_sweep(
        data,
        "sma_crossover",
        {"fast": [5, 10, 20], "slow": [20, 30]},
        BacktestConfig(commission=0.002),
        metric="final_equity",
        progress=lambda done, total: seen.append((done, total)),
        every=2,
    )
    assert seen == [(2, 6), (4, 6), (6, 6)]
    hm = res.heatmap
    assert hm["x_param"] == "fast" and hm["y_values"] == [20, 30]
    assert hm["matrix"][0][1] == pytest.approx(63341.19135999998)  # fast=10, slow=20: the parity case
    assert np.isnan(hm["matrix"][0][2])  # fast=20, slow=20 is invalid
    assert "error" in res.rows[4] and res.best["params"] == {"fast": 10, "slow": 20}
    assert res.to_dict()["heatmap"]["matrix"][0][2] is None
    cancelled = run_sweep(data, "sma_crossover", {"fast": [2, 3, 4, 5]}, should_cancel=lambda: True, every=1)
    assert cancelled.cancelled and cancelled.completed == 1 and cancelled.heatmap is None
    with pytest.raises(NotFound):
        run_sweep(data, "nope", {"x": [1]})


def test_render_chart_png() -> None:
    res = run_backtest(bars([10, 11, 12, 11, 13]), target=np.array([1, NAN, NAN, 0, NAN]), cash=100)
    png = render_chart(res)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
