"""Benchmark: SMA(10/20) crossover, long-only all-in, commission 0.2 %, next-open fills, whole units.

Runs our engine, backtesting.py and vectorbt on the same seeded random-walk bars, checks that
they produce the same trades, and prints bars/second plus a markdown table.

    .venv/bin/python benchmarks/bench_backtest.py [--sizes 10000,100000,1000000] [--bt-max 1000000]

backtesting.py loops over bars in Python; above ``--bt-max`` bars it is not run and its speed is
extrapolated from its largest run as constant bars/second (its cost is linear in bars; the
extrapolated rows are marked).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.domain.backtest import BacktestConfig, run_backtest  # noqa: E402
from backend.domain.strategies import StrategyFactory  # noqa: E402

FAST, SLOW, CASH, FEE = 10, 20, 10_000.0, 0.002


def random_walk(n: int, seed: int = 42) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    # unrounded prices: with 2-decimal prices exact SMA ties occur and each library's floating
    # summation order (pandas' running sum vs our windowed sum) then decides the tie differently
    open_ = np.concatenate(([100.0], close[:-1])) * (1 + rng.normal(0, 0.002, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.003, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.003, n)))
    vol = rng.integers(1_000, 10_000, n).astype(float)
    time_ = np.datetime64("2020-01-01T00:00") + np.arange(n).astype("timedelta64[m]")
    return {"time": time_, "open": open_, "high": high, "low": low, "close": close, "volume": vol}


def run_ours(d: dict[str, np.ndarray]) -> tuple[float, list[tuple[int, int]], float]:
    t0 = time.perf_counter()
    strat = StrategyFactory.create("sma_crossover", {"fast": FAST, "slow": SLOW})
    res = run_backtest(d, strat, BacktestConfig(cash=CASH, commission=FEE))
    dt = time.perf_counter() - t0
    return dt, [(t.entry_bar, t.exit_bar) for t in res.trades], res.metrics["final_equity"]


def _frame(d: dict[str, np.ndarray]):
    import pandas as pd

    return pd.DataFrame(
        {"Open": d["open"], "High": d["high"], "Low": d["low"], "Close": d["close"], "Volume": d["volume"]},
        index=pd.DatetimeIndex(d["time"]),
    )


def run_backtesting_py(d: dict[str, np.ndarray]) -> tuple[float, list[tuple[int, int]], float]:
    import pandas as pd
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    def sma(x, n):
        return pd.Series(x).rolling(n).mean()

    class SmaCross(Strategy):
        def init(self):
            self.s1 = self.I(sma, self.data.Close, FAST)
            self.s2 = self.I(sma, self.data.Close, SLOW)

        def next(self):
            if crossover(self.s1, self.s2):
                self.buy()
            elif crossover(self.s2, self.s1):
                self.position.close()

    t0 = time.perf_counter()
    df = _frame(d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = Backtest(df, SmaCross, cash=CASH, commission=FEE, finalize_trades=False).run()
    dt = time.perf_counter() - t0
    tr = stats["_trades"]
    return (
        dt,
        list(zip(tr["EntryBar"].astype(int), tr["ExitBar"].astype(int), strict=True)),
        float(stats["Equity Final [$]"]),
    )


def run_vectorbt(d: dict[str, np.ndarray]) -> tuple[float, list[tuple[int, int]], float]:
    import pandas as pd
    import vectorbt as vbt

    t0 = time.perf_counter()
    close = pd.Series(d["close"], index=pd.DatetimeIndex(d["time"]))
    open_ = pd.Series(d["open"], index=close.index)
    fast = vbt.MA.run(close, FAST)
    slow = vbt.MA.run(close, SLOW)
    # signal on close, executed at the next bar's open
    entries = fast.ma_crossed_above(slow).shift(1, fill_value=False).astype(bool)
    exits = fast.ma_crossed_below(slow).shift(1, fill_value=False).astype(bool)
    pf = vbt.Portfolio.from_signals(
        close,
        entries,
        exits,
        price=open_,
        fees=FEE,
        init_cash=CASH,
        size=np.inf,
        size_granularity=1,
        freq="1D",
    )
    stats = pf.stats()
    dt = time.perf_counter() - t0
    rec = pf.trades.records
    trades = list(zip(rec["entry_idx"].astype(int), rec["exit_idx"].astype(int), strict=True))
    closed = [t for t, s in zip(trades, rec["status"], strict=True) if s == 1]
    del stats
    return dt, closed, float(pf.final_value())


def first_call_seconds() -> float:
    code = "\n".join(
        [
            "import time; t0 = time.perf_counter(); import sys; sys.path.insert(0, " + repr(str(ROOT)) + ")",
            "from benchmarks.bench_backtest import random_walk",
            "from backend.domain.backtest import run_backtest",
            "from backend.domain.strategies import StrategyFactory",
            "s = StrategyFactory.create('sma_crossover', {})",
            "r = run_backtest(random_walk(10000), s, commission=0.002)",
            "print(time.perf_counter() - t0)",
        ]
    )
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    return float(out.stdout.strip()), wall


def best_of(fn, d, repeat: int):
    runs = [fn(d) for _ in range(repeat)]
    return min(runs, key=lambda r: r[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--bt-max", type=int, default=1_000_000)  # measured at every size, not extrapolated
    ap.add_argument("--no-vectorbt", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    vbt_ok = not args.no_vectorbt
    if vbt_ok:
        try:
            t0 = time.perf_counter()
            run_vectorbt(random_walk(1000, seed=1))  # numba JIT compile, excluded from timings
            print(f"vectorbt warm-up (numba compile): {time.perf_counter() - t0:.2f} s")
        except Exception as exc:  # report and carry on without it
            print(f"vectorbt unavailable: {exc!r}")
            vbt_ok = False

    rows = []
    bt_rate = None
    for n in sizes:
        d = random_walk(n)
        ours_t, ours_tr, ours_eq = best_of(run_ours, d, 3 if n <= 100_000 else 2)
        row = {"n": n, "ours": ours_t, "trades": len(ours_tr)}
        if n <= args.bt_max:
            bt_t, bt_tr, bt_eq = run_backtesting_py(d)
            assert bt_tr == ours_tr, f"trade mismatch vs backtesting.py at n={n}"
            assert abs(bt_eq - ours_eq) <= 1e-6 * abs(bt_eq), (bt_eq, ours_eq)
            bt_rate = n / bt_t
            row["bt"], row["bt_extrapolated"] = bt_t, False
        elif bt_rate:
            row["bt"], row["bt_extrapolated"] = n / bt_rate, True
        if vbt_ok:
            vbt_t, vbt_tr, vbt_eq = best_of(run_vectorbt, d, 3 if n <= 100_000 else 2)
            assert vbt_tr == ours_tr, f"trade mismatch vs vectorbt at n={n}"
            row["vbt"], row["vbt_eq"] = vbt_t, vbt_eq
        row["eq"] = ours_eq
        rows.append(row)
        print(f"n={n}: ours {ours_t:.4f}s ({n / ours_t:,.0f} bars/s), trades {len(ours_tr)}", flush=True)

    first, wall = first_call_seconds()
    print()
    print("| bars | trades | ours bars/s | backtesting.py bars/s | vectorbt bars/s | ours/bt | ours/vbt |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        n, ours = r["n"], r["ours"]
        bt, vb = r.get("bt"), r.get("vbt")
        bt_s = "-" if bt is None else f"{n / bt:,.0f}" + (" (extrap.)" if r["bt_extrapolated"] else "")
        vb_s = "-" if vb is None else f"{n / vb:,.0f}"
        bt_x = "-" if bt is None else f"{bt / ours:.0f}x"
        vb_x = "-" if vb is None else f"{vb / ours:.1f}x"
        print(f"| {n:,} | {r['trades']:,} | {n / ours:,.0f} | {bt_s} | {vb_s} | {bt_x} | {vb_x} |")
    print()
    print(f"First call in a fresh process (imports + 10k bars): {first:.3f} s in-process, {wall:.3f} s wall")
    print("Same trades (entry/exit bars) as backtesting.py and vectorbt: asserted for every size run.")


if __name__ == "__main__":
    main()
