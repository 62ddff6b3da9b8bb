"""Multi-asset portfolio backtests (backend.domain.backtest.multi) against hand computations and the
single-asset engine; no app."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from backend.domain.backtest import load_ohlcv_csv, run_backtest
from backend.domain.backtest.multi import run_portfolio
from backend.domain.errors import ValidationFailed
from backend.domain.strategies import StrategyFactory

GOOG = Path(__file__).resolve().parents[2] / "data" / "GOOG.csv"
EPS = np.finfo(float).eps


def bars(opens, closes, times=None) -> dict:
    o, c = np.asarray(opens, float), np.asarray(closes, float)
    out = {"open": o, "close": c, "high": np.maximum(o, c) + 0.5, "low": np.minimum(o, c) - 0.5}
    if times is not None:
        out["time"] = np.asarray(times, dtype="datetime64[ns]")
    return out


def sma(**p):
    return StrategyFactory.create("sma_crossover", p or {"fast": 10, "slow": 20})


# --------------------------------------------------------------------------- target weights


def test_two_asset_target_weights_by_hand():
    a = bars([10, 10, 12, 11], [10, 11, 12, 13])
    b = bars([20, 20, 19, 25], [20, 21, 24, 22])
    r = run_portfolio({"A": a, "B": b}, weights={"A": 0.5, "B": 0.3}, rebalance=2, cash=1000, commission=0.01)
    # bar 0 decides, bar 1 fills at the open: E = 1000 -> A floor(500/10) = 50, B floor(300/20) = 15;
    # charges 1 %: 5 and 3. Bar 2 decides again, bar 3 fills: E at the open = 992 + 50*(11-10) +
    # 15*(25-20) = 1117 -> A floor(558.5/11) = 50 (no order), B floor(335.1/25) = 13: sell 2 at 25.
    assert [(f.symbol, f.bar, f.side, f.qty, f.price, f.commission) for f in r.fills] == [
        ("A", 1, "buy", 50, 10, 5.0),
        ("B", 1, "buy", 15, 20, 3.0),
        ("B", 3, "sell", 2, 25, 0.5),
    ]
    # the 2 units sold close the oldest B lot pro rata: entry charge 3 * 2/15 = 0.4, exit 0.5
    (t,) = r.trades
    assert (t.symbol, t.entry_bar, t.exit_bar, t.size) == ("B", 1, 3, 2)
    assert t.commission == pytest.approx(0.9)
    assert t.pnl == pytest.approx(2 * (25 - 20) - 0.9)
    assert t.return_pct == pytest.approx(0.25 - 0.9 / 40)
    np.testing.assert_allclose(r.equity, [1000, 1057, 1152, 1177.5])
    np.testing.assert_allclose(r.cash, [1000, 192, 192, 241.5])
    np.testing.assert_array_equal(r.positions, [[0, 50, 50, 50], [0, 15, 15, 13]])
    assert sorted((o.symbol, o.size) for o in r.open_trades) == [("A", 50), ("B", 13)]
    assert r.metrics["commissions"] == pytest.approx(0.9)  # closed trades only, as the engine
    assert r.per_symbol["B"]["commissions"] == pytest.approx(3.5)
    assert r.metrics["buy_and_hold_return"] == pytest.approx((0.3 + 0.1) / 2)


def test_reductions_go_first_and_buys_are_cut_to_the_cash():
    a = bars([10, 10, 10], [10, 10, 10])
    b = bars([10, 10, 10], [10, 10, 10])
    # first all in A; then all in B: A must be sold before B can be bought
    sched = [(np.datetime64("2024-01-01"), {"A": 1.0}), (np.datetime64("2024-01-02"), {"B": 1.0})]
    t = np.array(["2024-01-01", "2024-01-02", "2024-01-03"], dtype="datetime64[ns]")
    a["time"] = b["time"] = t
    r = run_portfolio({"A": a, "B": b}, schedule=sched, cash=1000, commission=0.001)
    # bar 1: 1000*(1-eps)/10.01 -> 99 A; bar 2: sell 99 A, then B with the cash left
    assert [(f.symbol, f.bar, f.side, f.qty) for f in r.fills] == [
        ("A", 1, "buy", 99),
        ("A", 2, "sell", 99),
        ("B", 2, "buy", 99),
    ]
    cash_after_sell = 1000 - 990 - 0.99 + 990 - 0.99
    assert r.cash[-1] == pytest.approx(cash_after_sell - 990 - 0.99)
    assert r.cash.min() >= 0


def test_monthly_rebalance_fills_on_the_first_bar_of_each_month():
    days = np.arange(np.datetime64("2024-01-29"), np.datetime64("2024-03-05"))
    days = days[(days.astype("datetime64[D]").view("int64") + 3) % 7 < 5]  # weekdays
    n = days.size
    rng = np.random.default_rng(3)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (2, n)), axis=1))
    series = {s: bars(closes[k], closes[k], days) for k, s in enumerate("AB")}
    r = run_portfolio(series, weights={"A": 0.5, "B": 0.5}, rebalance="monthly", cash=1e6, market="nse")
    fill_days = sorted({str(r.times[f.bar])[:10] for f in r.fills})
    # initial allocation on bar 1, then the first trading day of February and of March
    assert fill_days == [str(days[1])[:10], "2024-02-01", "2024-03-01"]


def test_a_symbol_missing_on_the_fill_bar_keeps_its_holding_until_the_next_rebalance():
    t = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-01-06")).astype("datetime64[ns]")
    a = bars([10, 10, 10, 10, 10], [10, 10, 10, 10, 10], t)
    keep = np.array([True, False, True, True, True])  # B has no bar on the first fill bar
    b = bars(np.array([20, 20, 22, 22, 22])[keep], np.array([20, 20, 22, 22, 22])[keep], t[keep])
    r = run_portfolio({"A": a, "B": b}, weights={"A": 0.5, "B": 0.5}, rebalance=2, cash=1000)
    # decisions on bars 0 and 2: bar 1 buys A only (B missing), bar 3 buys B at its open 22
    assert [(f.symbol, f.bar, f.qty) for f in r.fills] == [("A", 1, 50), ("B", 3, 22)]
    np.testing.assert_array_equal(r.close[1], [20, 20, 22, 22, 22])  # bar 1 valued at bar 0's close
    np.testing.assert_allclose(r.cash, [1000, 500, 500, 16, 16])


def test_shorts_need_long_only_false_and_are_negative_positions():
    a = bars([10, 10, 10, 9], [10, 10, 9, 9])
    b = bars([20, 20, 20, 21], [20, 20, 21, 21])
    with pytest.raises(ValidationFailed) as exc:
        run_portfolio({"A": a, "B": b}, weights={"A": -0.5, "B": 0.5}, cash=1000)
    assert "A" in exc.value.details["weights"]
    r = run_portfolio({"A": a, "B": b}, weights={"A": -0.4, "B": 0.5}, cash=1000, long_only=False)
    np.testing.assert_array_equal(r.positions[:, -1], [-40, 25])
    # short 40 at 10, long 25 at 20; A falls to 9 (+40), B rises to 21 (+25)
    assert r.equity[-1] == pytest.approx(1000 + 40 + 25)
    assert r.cash[-1] + (r.positions[:, -1] * r.close[:, -1]).sum() == pytest.approx(r.equity[-1])


# --------------------------------------------------------------------------- signals


def test_signals_equal_slice_per_open_signal_by_hand():
    a = bars([10, 10, 11, 12, 13], [10, 10.5, 11.5, 12.5, 13])
    b = bars([20, 20, 21, 22, 23], [20, 20.5, 21.5, 22.5, 23])
    c = bars([5, 5, 5, 6, 6], [5, 5, 5, 6, 6])
    nan = np.nan
    targets = {
        "A": [1, nan, nan, 0, nan],
        "B": [1, nan, nan, nan, nan],
        "C": [nan, nan, 1, nan, nan],
    }
    r = run_portfolio({"A": a, "B": b, "C": c}, targets=targets, cash=1000)
    # bar 1: A and B enter together, k = 2 -> 500 each; all-in sizing uses cash * (1 - eps)
    # (the engine's and backtesting.py's rule): A floor(499.99.../10) = 49, B floor(499.99.../20) = 24.
    # bar 3: C enters with k = 3 -> E/3 = 382, but only 30 cash is free -> floor(29.99.../6) = 4.
    # bar 4: A exits at 13.
    assert math.floor(500 * (1 - EPS) / 10) == 49 and math.floor(30 * (1 - EPS) / 6) == 4
    assert [(f.symbol, f.bar, f.side, f.qty, f.price) for f in r.fills] == [
        ("A", 1, "buy", 49, 10),
        ("B", 1, "buy", 24, 20),
        ("C", 3, "buy", 4, 6),
        ("A", 4, "sell", 49, 13),
    ]
    (t,) = r.trades
    assert (t.symbol, t.pnl, t.return_pct) == ("A", 49 * 3, pytest.approx(0.3))
    np.testing.assert_allclose(r.equity, [1000, 1036.5, 1109.5, 1182.5, 1219])
    np.testing.assert_allclose(r.cash, [1000, 30, 30, 6, 643])


def test_fixed_sizing_fraction_per_entry():
    a = bars([10, 10, 10], [10, 10, 10])
    b = bars([10, 10, 10], [10, 10, 10])
    r = run_portfolio(
        {"A": a, "B": b}, targets={"A": [1, 1, 1], "B": [1, 1, 1]}, sizing={"A": 0.3}, cash=1000
    )
    # A gets 30 % of equity; B has no fraction: it stays flat
    assert [(f.symbol, f.qty) for f in r.fills] == [("A", 29)]


def _goog():
    return load_ohlcv_csv(GOOG)


def _assert_same(single, trades, equity):
    fields = ("entry_bar", "exit_bar", "entry_price", "exit_price", "size", "pnl", "return_pct", "commission")
    assert len(trades) == len(single.trades) == 46
    for ours, ref in zip(trades, single.trades, strict=True):
        assert [getattr(ours, f) for f in fields] == [getattr(ref, f) for f in fields]  # bit for bit
    np.testing.assert_array_equal(equity, single.equity)


@pytest.mark.parametrize(
    "commission", [0.002, lambda side, qty, px: 20.0 + 0.001 * qty * px], ids=["flat", "function"]
)
def test_a_symbol_that_never_trades_leaves_the_single_asset_result(commission):
    goog = _goog()
    single = run_backtest(goog, sma(), cash=10_000, commission=commission)
    # a steadily rising series: SMA(10) is above SMA(20) from the first bar both exist, no crossover
    n = goog["close"].size
    line = 100 + np.arange(n, dtype=float)
    flat = {"time": goog["time"], "open": line, "high": line + 1, "low": line - 1, "close": line}
    r = run_portfolio(
        {"GOOG": goog, "LINE": flat},
        strategies={"GOOG": sma(), "LINE": sma()},
        cash=10_000,
        commission=commission,
    )
    assert not [f for f in r.fills if f.symbol == "LINE"]
    _assert_same(single, r.trades, r.equity)
    (op,) = r.open_trades
    assert (op.entry_bar, op.entry_price, op.size, op.pnl) == (
        single.open_trade.entry_bar,
        single.open_trade.entry_price,
        single.open_trade.size,
        single.open_trade.pnl,
    )
    for k in (
        "final_equity",
        "sharpe",
        "max_drawdown",
        "cagr",
        "win_rate",
        "sqn",
        "exposure",
        "periods_per_year",
    ):
        assert r.metrics[k] == single.metrics[k], k


def test_missing_bars_of_the_other_symbol_change_nothing_for_the_trader():
    goog = _goog()
    single = run_backtest(goog, sma(), cash=10_000, commission=0.002)
    rng = np.random.default_rng(7)
    keep = np.sort(rng.choice(goog["close"].size, 900, replace=False))
    other = {k: v[keep] for k, v in goog.items()}  # same dates, most of them missing
    r = run_portfolio(
        {"GOOG": goog, "OTHER": other}, strategies={"GOOG": sma()}, cash=10_000, commission=0.002
    )
    _assert_same(single, r.trades, r.equity)


def test_a_symbol_with_gaps_trades_on_its_own_bars_and_is_forward_filled():
    goog = _goog()
    n = goog["close"].size
    drop = np.zeros(n, dtype=bool)
    drop[np.arange(30, n, 17)] = True  # GOOG misses every 17th bar
    gappy = {k: v[~drop] for k, v in goog.items()}
    single = run_backtest(gappy, sma(), cash=10_000, commission=0.002)
    line = 100 + np.arange(n, dtype=float)
    full = {"time": goog["time"], "open": line, "high": line + 1, "low": line - 1, "close": line}
    r = run_portfolio(
        {"GOOG": gappy, "LINE": full}, strategies={"GOOG": sma()}, cash=10_000, commission=0.002
    )
    # same trades, at the same times and prices; bars refer to the union timeline
    assert [(t.entry_time, t.exit_time, t.entry_price, t.exit_price, t.size, t.pnl) for t in r.trades] == [
        (gappy["time"][t.entry_bar], gappy["time"][t.exit_bar], t.entry_price, t.exit_price, t.size, t.pnl)
        for t in single.trades
    ]
    # on GOOG's own bars the equity is the engine's; on its missing bars it is marked at the last close
    own = np.searchsorted(r.times, gappy["time"])
    np.testing.assert_array_equal(r.equity[own], single.equity)
    missing = np.flatnonzero(drop)
    np.testing.assert_array_equal(r.close[0, missing], goog["close"][missing - 1])
    assert np.isin(r.times[[f.bar for f in r.fills]], gappy["time"]).all()


# --------------------------------------------------------------------------- accounting


def _replay(r, cash0):
    """Cash and holdings rebuilt from the fills alone (independent of the ledger)."""
    s_idx = {s: k for k, s in enumerate(r.symbols)}
    n = r.equity.size
    flow = np.zeros(n)
    units = np.zeros((len(r.symbols), n))
    for f in r.fills:
        sign = 1.0 if f.side == "buy" else -1.0
        flow[f.bar] -= sign * f.qty * f.price + f.commission
        units[s_idx[f.symbol], f.bar] += sign * f.qty
    cash = cash0 + np.cumsum(flow)
    units = np.cumsum(units, axis=1)
    holdings = np.nansum(units * r.close, axis=0)
    return cash, units, holdings


@pytest.mark.parametrize("mode", ["weights", "signals"])
def test_cash_plus_holdings_is_equity_on_every_bar(mode):
    rng = np.random.default_rng(11)
    days = np.arange(np.datetime64("2023-01-02"), np.datetime64("2024-06-28"))
    days = days[(days.astype("datetime64[D]").view("int64") + 3) % 7 < 5]
    series = {}
    for k, sym in enumerate(["AAA", "BBB", "CCC"]):
        close = (200 + 300 * k) * np.exp(np.cumsum(rng.normal(0, 0.015, days.size)))
        opens = close * np.exp(rng.normal(0, 0.004, days.size))
        keep = rng.random(days.size) > 0.03 * k  # BBB and CCC miss some days
        series[sym] = bars(opens[keep], close[keep], days[keep])

    def charges(side, qty, px):  # a contract-note-like schedule: capped brokerage + ad-valorem
        value = qty * px
        return min(20.0, 0.0003 * value) + (0.001 if side == "sell" else 0.00015) * value

    cfg = {"cash": 1_000_000, "commission": charges, "slippage": 0.0005}
    if mode == "weights":
        r = run_portfolio(series, weights={"AAA": 0.4, "BBB": 0.35, "CCC": 0.25}, rebalance="monthly", **cfg)
    else:
        r = run_portfolio(series, strategies={s: sma(fast=5, slow=15) for s in series}, **cfg)
    assert len(r.fills) > 20
    cash, units, holdings = _replay(r, 1_000_000)
    np.testing.assert_array_equal(units, r.positions)
    np.testing.assert_allclose(r.cash, cash, rtol=1e-12, atol=1e-6)
    np.testing.assert_allclose(cash + holdings, r.equity, rtol=1e-12)
    assert cash.min() >= -1e-6  # never spends money it does not have
    charged = sum(f.commission for f in r.fills)
    booked = sum(t.commission for t in r.trades) + sum(t.commission for t in r.open_trades)
    assert booked == pytest.approx(charged, rel=1e-12)
    for f in r.fills:  # fills at that symbol's open of the fill bar, slipped against the order
        own = series[f.symbol]
        i = int(np.searchsorted(own["time"], r.times[f.bar]))
        assert own["time"][i] == r.times[f.bar]
        assert f.price == pytest.approx(own["open"][i] * (1.0005 if f.side == "buy" else 0.9995), rel=1e-15)
        assert f.qty == int(f.qty)


# --------------------------------------------------------------------------- validation


def _two():
    t = np.array(["2024-01-01", "2024-01-02", "2024-01-03"], dtype="datetime64[ns]")
    return {"A": bars([1, 1, 1], [1, 1, 1], t), "B": bars([2, 2, 2], [2, 2, 2], t)}


@pytest.mark.parametrize(
    ("kwargs", "field", "key"),
    [
        ({"weights": {"A": 0.7, "B": 0.5}}, "weights", None),
        ({"weights": {"A": -0.2}}, "weights", "A"),
        ({"weights": {"ZZZ": 0.2}}, "weights", "ZZZ"),
        ({"weights": {"A": float("nan")}}, "weights", "A"),
        ({"weights": {"A": 0.5}, "rebalance": "daily"}, "rebalance", None),
        ({"weights": {"A": 0.5}, "rebalance": 0}, "rebalance", None),
        ({"weights": {"A": 0.5}, "stop_loss": 0.05}, "stop_loss", None),
        ({"weights": {"A": 0.5}, "targets": {"A": [1, 1, 1]}}, "mode", None),
        ({}, "mode", None),
        ({"targets": {"ZZZ": [1, 1, 1]}}, "targets", None),
        ({"targets": {"A": [1, 1]}}, "targets", "A"),
        ({"schedule": [("2024-01-09", {"A": 0.5})]}, "schedule", 0),
        ({"schedule": [("2024-01-02", {"A": 0.5}), ("2024-01-01", {"A": 0.5})]}, "schedule", 1),
        ({"schedule": [("2024-01-02", {"A": 0.9, "B": 0.2})]}, "schedule", 0),
    ],
)
def test_bad_inputs_name_the_field(kwargs, field, key):
    with pytest.raises(ValidationFailed) as exc:
        run_portfolio(_two(), **kwargs)
    details = exc.value.details
    assert field in details, details
    if key is not None:
        assert key in details[field], details


def test_bad_series_are_named():
    t = np.array(["2024-01-01", "2024-01-02", "2024-01-03"], dtype="datetime64[ns]")
    good = bars([1, 1, 1], [1, 1, 1], t)
    cases = [
        ({"A": good, "B": {"open": [], "high": [], "low": [], "close": []}}, "B"),  # empty
        ({"A": good, "B": bars([1, 1], [1, 1])}, "B"),  # no timestamps while A has them
        ({"A": bars([1, 1, 1], [1, 1, 1]), "B": bars([1, 1], [1, 1])}, "B"),  # lengths differ, no times
        ({"A": good, "B": {**good, "close": np.array([1, np.nan, 1])}}, "B"),  # a NaN
        (
            {
                "A": good,
                "B": bars(
                    [1] * 3,
                    [1] * 3,
                    np.array(
                        ["2024-01-01T09:00", "2024-01-01T10:00", "2024-01-01T11:00"], dtype="datetime64[ns]"
                    ),
                ),
            },
            "B",
        ),  # hourly against daily
    ]
    for series, bad in cases:
        with pytest.raises(ValidationFailed) as exc:
            run_portfolio(series, weights={"A": 0.5})
        assert bad in exc.value.details["bars"], exc.value.details
    with pytest.raises(ValidationFailed) as exc:
        run_portfolio({}, weights={})
    assert "bars" in exc.value.details


def test_every_rebalance_lands_within_one_share_of_the_targets():
    rng = np.random.default_rng(5)
    days = np.arange(np.datetime64("2022-01-03"), np.datetime64("2024-01-01"))
    days = days[(days.astype("datetime64[D]").view("int64") + 3) % 7 < 5]
    weights = {"A": 0.5, "B": 0.3, "C": 0.1}
    series = {}
    for k, sym in enumerate(weights):
        close = (50 + 400 * k) * np.exp(np.cumsum(rng.normal(0, 0.02, days.size)))
        series[sym] = bars(close * np.exp(rng.normal(0, 0.005, days.size)), close, days)
    r = run_portfolio(series, weights=weights, rebalance="monthly", cash=250_000)
    fill_bars = sorted({f.bar for f in r.fills})
    assert len(fill_bars) >= 20
    for j in fill_bars:
        opens = np.array([series[s]["open"][j] for s in r.symbols])
        held_before = r.positions[:, j - 1]
        equity_at_open = r.cash[j - 1] + (held_before * opens).sum()
        for k, sym in enumerate(r.symbols):
            target = weights[sym] * equity_at_open
            value = r.positions[k, j] * opens[k]
            assert target - opens[k] < value <= target, (sym, j)
