"""The engine's fast paths give the same answers as the plain ones (issue 16, honest speed).

* the event-driven fill loop against a bar-by-bar reference written from the documented rules;
* a sweep (bars parsed once, indicators shared between combinations) against one run per combination;
* ``indicators.shared_results`` shares only results computed from immutable inputs.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.domain import indicators as ind
from backend.domain.backtest import BacktestConfig, load_ohlcv_csv, run_backtest, run_sweep
from backend.domain.strategies import StrategyFactory

GOOG = Path(__file__).resolve().parents[2] / "data" / "GOOG.csv"
EPS = 1 - sys.float_info.epsilon


def _walk(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * (1 + rng.normal(0, 0.002, n))
    high = np.maximum(open_, close) * 1.001
    low = np.minimum(open_, close) * 0.999
    return {"open": open_, "high": high, "low": low, "close": close}


def _reference(d, target, cash, rate, long_only):
    """Bar by bar: the target after bar i-1's close fills at bar i's open (backtesting.py sizing)."""
    o, c = d["open"], d["close"]
    size = entry = entry_comm = 0.0
    entry_bar = -1
    desired = 0.0
    trades, equity = [], []
    for i in range(o.size):
        if i > 0:
            t = target[i - 1]
            if long_only and t < 0:
                t = 0.0
            new = desired if math.isnan(t) else float(np.sign(t))
            if new != desired:
                px = float(o[i])
                if size != 0 and math.copysign(1.0, size) != new:
                    comm = abs(size) * px * rate
                    gross = size * (px - entry)
                    cash += gross - comm
                    trades.append((entry_bar, i, entry, px, size, gross - (entry_comm + comm)))
                    size = 0.0
                if new != 0 and size == 0:
                    qty = float(cash * EPS // (px + (EPS * px * rate) / EPS))
                    if qty > 0:
                        size, entry, entry_bar = qty * new, px, i
                        entry_comm = qty * px * rate
                        cash -= entry_comm
            desired = new
        equity.append(cash + size * (c[i] - entry))
    return trades, np.array(equity)


@pytest.mark.parametrize("seed", range(12))
def test_event_loop_matches_bar_by_bar_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 600))
    d = _walk(n, seed)
    target = np.full(n, np.nan)
    at = rng.choice(n, size=int(rng.integers(1, n // 3)), replace=False)
    target[at] = rng.choice([-1.0, 0.0, 1.0, 0.4, -3.0], size=at.size)
    long_only = bool(seed % 2)
    rate = [0.0, 0.002, 0.01][seed % 3]
    res = run_backtest(d, target=target, cash=1_000.0, commission=rate, long_only=long_only)
    ref_trades, ref_equity = _reference(d, target, 1_000.0, rate, long_only)
    got = [(t.entry_bar, t.exit_bar, t.entry_price, t.exit_price, t.size, t.pnl) for t in res.trades]
    assert got == ref_trades
    assert np.array_equal(res.equity, ref_equity)


def test_sweep_rows_equal_one_backtest_per_combination() -> None:
    data = load_ohlcv_csv(GOOG)
    cfg = BacktestConfig(commission=0.002)
    for name, grid in (
        ("sma_crossover", {"fast": [5, 10, 15], "slow": [20, 40]}),
        ("bollinger_breakout", {"period": [10, 20], "k": [1.5, 2.0]}),
        ("macd", {"fast": [8, 12], "slow": [26]}),
    ):
        res = run_sweep(data, name, grid, cfg, metric="final_equity")
        assert len(res.rows) == math.prod(len(v) for v in grid.values())
        for row in res.rows:
            single = run_backtest(data, StrategyFactory.create(name, row["params"]), cfg)
            assert row["metrics"] == single.metrics, (name, row["params"])
    # the caller's arrays are neither frozen nor altered by the sweep
    assert data["close"].flags.writeable


def test_shared_results_only_for_immutable_inputs() -> None:
    x = np.linspace(1.0, 2.0, 50)
    frozen = x.copy()
    frozen.setflags(write=False)
    with ind.shared_results():
        a, b = ind.sma(frozen, 5), ind.sma(frozen[:], 5)  # a fresh view of the same memory hits too
        assert a is b and not a.flags.writeable
        assert ind.sma(frozen, 6) is not a
        w1, w2 = ind.sma(x, 5), ind.sma(x, 5)  # writable input: its content may change between calls
        assert w1 is not w2 and w1.flags.writeable
        view_of_writable = x[:]
        view_of_writable.setflags(write=False)  # read-only view, but x can still change under it
        assert ind.sma(view_of_writable, 5) is not ind.sma(view_of_writable, 5)
        line, sig, hist = ind.macd(frozen, 3, 6, 2)
        assert ind.macd(frozen, 3, 6, 2)[0] is line
    np.testing.assert_array_equal(a, ind.sma(x, 5))
    outside = ind.sma(frozen, 5)
    assert outside is not a and outside.flags.writeable  # no sharing outside the block


def _csv(rows: list[str], header: str = "datetime,open,high,low,close,volume") -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def test_fast_csv_reader_equals_the_row_by_row_reader() -> None:
    from backend.domain.backtest.data import _read_slow
    from backend.domain.backtest.timestamps import parse_times

    d = _walk(500, 3)
    stamps = np.datetime_as_string(
        np.datetime64("2024-01-01T09:15") + np.arange(500).astype("timedelta64[m]")
    )
    rows = [
        f"{t},{o!r},{h!r},{lo!r},{c!r},{v}"
        for t, o, h, lo, c, v in zip(
            stamps.tolist(),
            d["open"].tolist(),
            d["high"].tolist(),
            d["low"].tolist(),
            d["close"].tolist(),
            range(500),
            strict=True,
        )
    ]
    raw = _csv(rows)
    fast = load_ohlcv_csv(raw)
    import csv as _csv_mod
    import io

    text = io.StringIO(raw.decode())
    header = next(_csv_mod.reader(text))
    values, times, _, _ = _read_slow(
        text, header, {"open": 1, "high": 2, "low": 3, "close": 4, "volume": 5}, 0, None
    )
    for k, v in values.items():
        assert np.array_equal(fast[k], v) and fast[k].flags.writeable, k
    assert np.array_equal(fast["time"], parse_times(times.astype(str), "datetime"))


def test_csv_oddities_fall_back_and_keep_exact_line_numbers() -> None:
    from backend.domain.errors import ValidationFailed

    # a blank line, then a bad value: the line number counts the blank line
    raw = _csv(["2024-01-02,1,2,0.5,1,10", "", "2024-01-03,1,2,0.5,bad,10"])
    with pytest.raises(ValidationFailed) as exc:
        load_ohlcv_csv(raw)
    assert exc.value.details["rows"] == [{"row": 4, "column": "close", "message": "not a number: 'bad'"}]
    # an empty number is refused (never read as NaN) and named
    with pytest.raises(ValidationFailed) as exc:
        load_ohlcv_csv(_csv(["2024-01-02,1,2,0.5,1,10", "2024-01-03,1,2,,1,10"]))
    assert exc.value.details["rows"][0]["row"] == 3 and exc.value.details["rows"][0]["column"] == "low"
    # mixed widths, blanks around stamps, a UTC offset, non-ASCII in another column: same instants
    out = load_ohlcv_csv(
        _csv(
            [
                " 2024-01-02 09:15:00 ,1,2,0.5,1,10",
                "2024-01-02T09:16:00.5,1,2,0.5,1,10",
                "2024-01-02T15:17:00+05:30,1,2,0.5,1,10",
            ],
            header="datetime,open,high,low,close,volume",
        )
    )
    assert (
        out["time"].tolist()
        == np.array(
            ["2024-01-02T09:15:00", "2024-01-02T09:16:00.5", "2024-01-02T09:47:00"], dtype="datetime64[ns]"
        ).tolist()
    )
    # a wrong year on the fast (bytes) path is still an error naming the column
    with pytest.raises(ValidationFailed) as exc:
        load_ohlcv_csv(_csv(["2024-01-02T09:15:00,1,2,0.5,1,10", "2999-01-02T09:16:00,1,2,0.5,1,10"]))
    assert exc.value.code == "BAD_TIMESTAMP" and exc.value.details["time"]["column"] == "datetime"


def test_sma_window_sums_are_numpys_bit_for_bit() -> None:
    """The blocked SMA adds in numpy's own order: every window sum equals the strided reduction."""
    from numpy.lib.stride_tricks import sliding_window_view

    from backend.domain.indicators.core import _window_sums

    x = _walk(3000, 11)["close"]
    for k in range(1, 129):
        ref = sliding_window_view(x, k).sum(axis=1)
        assert np.array_equal(_window_sums(x, k, block=257), ref), k
        assert np.array_equal(_window_sums(x, k), ref), k
    np.testing.assert_array_equal(ind.sma(x, 200)[199:], sliding_window_view(x, 200).sum(axis=1) / 200)


# --------------------------------------------------------------------------- 5M-bar fast paths


def test_calendar_share_of_one_cycle_equals_the_count_over_every_bar() -> None:
    """Evenly spaced bars: counting one week (or day) and scaling gives the count of every bar."""
    from backend.domain.backtest.annualise import _share

    day = 86_400 * 10**9
    weekend = lambda x: (x + 3 * day) % (7 * day) >= 5 * day  # noqa: E731
    night = lambda x: (x % day < 3 * 3600 * 10**9) | (x % day >= 10 * 3600 * 10**9)  # noqa: E731
    start = np.datetime64("2024-01-03T09:17:00", "ns").view(np.int64)
    for step_s, n in ((60, 30_000), (420, 9_001), (3600, 5_000), (90, 20_161), (86_400, 400), (7_777, 3_000)):
        step = step_s * 10**9
        ticks = start + step * np.arange(n, dtype=np.int64)
        for hit, period in ((weekend, 7 * day), (night, day)):
            expected = np.count_nonzero(hit(ticks)) / n
            assert _share(ticks, step, period, hit) == expected, (step_s, n)


def test_even_spacing_shortcut_infers_what_the_median_of_the_gaps_gives() -> None:
    from backend.domain.backtest import annualise

    minutes = np.datetime64("2024-01-01T00:00", "ns") + np.arange(200_000).astype("timedelta64[m]")
    assert annualise._even_step(minutes.view(np.int64), block=1000) == 60 * 10**9
    fast = annualise.infer(minutes)
    assert (fast.periods_per_year, fast.market, fast.bar_seconds) == (525_600.0, "crypto", 60.0)
    # one gap changed anywhere (here in the last block): the general path, the same median
    bent = minutes.copy()
    bent[-1] += np.timedelta64(30, "s")
    assert annualise._even_step(bent.view(np.int64), block=1000) is None
    assert annualise.infer(bent) == fast
    # NSE session minutes (overnight gaps: not evenly spaced) and half-second bars keep the median
    nse = np.concatenate(
        [
            np.datetime64(f"2024-01-{d:02d}T03:45", "ns") + np.arange(375).astype("timedelta64[m]")
            for d in (1, 2, 3)
        ]
    )
    assert annualise.infer(nse).periods_per_year == 375 * 252 and annualise.infer(nse).market == "nse"
    half = np.datetime64("2024-01-01", "ns") + (np.arange(1000) * 500).astype("timedelta64[ms]")
    gaps = np.diff(half.astype("datetime64[s]").astype(np.int64))  # 0, 1, 0, 1 ... whole seconds
    assert annualise.infer(half).bar_seconds == float(np.median(gaps[gaps > 0])) == 1.0


def test_datetime64_of_any_unit_becomes_ns_exactly_and_years_are_checked_first() -> None:
    from backend.domain.backtest.timestamps import parse_times
    from backend.domain.errors import ValidationFailed

    for unit in ("D", "h", "m", "s", "ms", "us", "W", "M"):
        t = np.array(["2024-01-01", "2024-03-01", "2199-12-01"], dtype=f"datetime64[{unit}]")
        np.testing.assert_array_equal(parse_times(t), t.astype("datetime64[ns]"))
    # year 2500 does not fit in int64 nanoseconds: numpy's cast wraps it silently to 1915; the
    # year check on the array's own unit refuses it
    with pytest.raises(ValidationFailed) as exc:
        parse_times(np.array(["2024-01-01", "2500-01-01"], dtype="datetime64[D]"))
    assert exc.value.code == "BAD_TIMESTAMP" and exc.value.details["time"]["index"] == 1
    with pytest.raises(ValidationFailed):
        parse_times(np.array(["NaT", "2024-01-01"], dtype="datetime64[m]"))


def test_blocked_validation_names_a_bad_bar_in_any_block() -> None:
    from backend.domain.backtest.data import load_ohlcv
    from backend.domain.errors import ValidationFailed

    n = 70_000  # three validation blocks of 32,768 bars
    base = _walk(n, 5)
    base["time"] = np.datetime64("2024-01-01", "ns") + np.arange(n).astype("timedelta64[m]")
    load_ohlcv(base)  # clean
    cases = [
        (
            "high",
            69_999,
            lambda d, i: d["high"].__setitem__(i, d["close"][i] * 0.999),
            "high is below open or close",
        ),
        (
            "low",
            40_000,
            lambda d, i: d["low"].__setitem__(i, d["open"][i] * 1.001),
            "low is above open or close",
        ),
        ("close", 33_000, lambda d, i: d["close"].__setitem__(i, np.nan), "not a finite number (NaN or inf)"),
        ("open", 65_536, lambda d, i: d["open"].__setitem__(i, np.inf), "not a finite number (NaN or inf)"),
        (
            "time",
            32_768,
            lambda d, i: d["time"].__setitem__(i, d["time"][i - 1]),
            "time is not after the previous row",
        ),
    ]
    for column, i, spoil, message in cases:
        d = {k: v.copy() for k, v in base.items()}
        spoil(d, i)
        with pytest.raises(ValidationFailed) as exc:
            load_ohlcv(d)
        assert {"bar": i, "column": column, "message": message} in exc.value.details["rows"], column
    d = {k: v.copy() for k, v in base.items()}
    d["time"][0] = np.datetime64("NaT")
    with pytest.raises(ValidationFailed):
        load_ohlcv(d)


def test_return_ratios_equal_the_three_metrics_bit_for_bit() -> None:
    from backend.domain import metrics as m

    rng = np.random.default_rng(3)
    for r in (rng.normal(0, 0.01, 10_001), np.array([0.01]), np.array([0.01, -0.02]), np.zeros(5)):
        for ppy, rf in ((252.0, 0.0), (525_600.0, 0.05), (12.0, -0.01)):
            expected = (m.annual_volatility(r, ppy), m.sharpe_ratio(r, ppy, rf), m.sortino_ratio(r, ppy, rf))
            for got in (m.return_ratios(r, ppy, rf), m.return_ratios(r.copy(), ppy, rf, overwrite=True)):
                assert np.array_equal(np.array(got), np.array(expected), equal_nan=True), (r.size, rf)


def test_drawdown_in_place_equals_the_where_expression() -> None:
    from backend.domain import metrics as m

    def plain(e):
        peak = np.maximum.accumulate(e)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(peak > 0, 1.0 - e / peak, 0.0)

    for e in (
        np.array([100.0, 110.0, 99.0, 120.0, 60.0]),
        np.array([-5.0, -1.0, 2.0, 1.0]),  # not positive at first: the where path
        np.array([100.0, np.nan, 90.0]),
        np.array([0.0, 0.0, 1.0]),
    ):
        np.testing.assert_array_equal(m.drawdown_curve(e), plain(e))
        out = np.empty_like(e)
        assert m.drawdown_curve(e, out=out) is out
        np.testing.assert_array_equal(out, plain(e))
