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
