"""Benchmark: our engine against vectorbt 1.2.0 and backtesting.py 0.6.6, like for like.

Bars: a seeded 1-minute random walk (``random_walk``), 100k, 1M and 5M bars by default.
Strategy everywhere: SMA(10) / SMA(20) crossover on close, long-only, all-in whole units, 0.2 %
commission per side, cash 10,000, the signal of bar i's close filled at bar i+1's open. Every
engine's trades (entry and exit bar) are asserted identical to ours at every size, and the final
equity equal to 1e-6 (relative).

What each timed call computes (numpy arrays in, the timer around the whole call):

* **ours** -- ``run_backtest(bars, SmaCrossover(10, 20), BacktestConfig(cash, commission))``:
  validates the bars, both SMAs, the crossover targets, the fills, the trade list, the equity and
  drawdown curves and all 23 summary metrics (Sharpe, Sortino, CAGR, drawdown duration, SQN ...).
* **vectorbt** -- pandas Series from the arrays, ``vbt.MA.run`` x 2, ``ma_crossed_above`` /
  ``ma_crossed_below`` shifted one bar, ``vbt.Portfolio.from_signals(close, entries, exits,
  price=open, fees, init_cash, size=inf, size_granularity=1)`` and ``pf.total_return()``: less
  than ours computes (no drawdown, no metrics), so the ratio is conservative for us.
* **vectorbt + stats()** -- the same plus ``pf.stats()`` (vectorbt's full report), for reference.
* **backtesting.py** -- ``Backtest(df, SmaCross, cash, commission, finalize_trades=False).run()``
  (its run always computes its full statistics), DataFrame construction included.
* **simulation only** -- targets / entries and exits computed beforehand, outside the timer:
  ``run_backtest(bars, target=...)`` against ``Portfolio.from_signals(...) + total_return()``.

Parameter sweep (``--sweep-bars``, 100k by default): fast in 5..50 step 5 x slow in 60..240 step
20 = 100 combinations. vectorbt's vectorised form (one ``MA.run`` per side with the 100 paired
windows, one ``from_signals`` over 100 columns, ``total_return()``) against ``run_sweep(...,
metric="total_return")``, which computes every metric of every combination plus the heat map.
Total returns asserted equal (1e-9).

Best of ``--repeat`` runs (2 at 5M bars), ours and the references interleaved; vectorbt's numba
compilation is excluded (a warm-up run first, reported). backtesting.py runs once per size.
First call: a fresh interpreter importing the engine and running 10k bars, timed in-process and
as the wall time of the whole subprocess.

    benchmarks/.venv/bin/python benchmarks/bench_backtest.py [--sizes 100000,1000000,5000000]
        [--bt-max 5000000] [--repeat 3] [--sweep-bars 100000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.domain.backtest import BacktestConfig, run_backtest, run_sweep  # noqa: E402
from backend.domain.strategies import StrategyFactory  # noqa: E402

FAST, SLOW, CASH, FEE = 10, 20, 10_000.0, 0.002
SWEEP_FAST = list(range(5, 55, 5))
SWEEP_SLOW = list(range(60, 260, 20))


def random_walk(n: int, seed: int = 42) -> dict[str, np.ndarray]:
    """Seeded 1-minute OHLCV random walk from 2020-01-01 00:00 (5M bars end in 2029)."""
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


# --------------------------------------------------------------------------- ours


def run_ours(d: dict[str, np.ndarray]) -> tuple[float, list[tuple[int, int]], float]:
    t0 = time.perf_counter()
    strat = StrategyFactory.create("sma_crossover", {"fast": FAST, "slow": SLOW})
    res = run_backtest(d, strat, BacktestConfig(cash=CASH, commission=FEE))
    dt = time.perf_counter() - t0
    return dt, [(t.entry_bar, t.exit_bar) for t in res.trades], res.metrics["final_equity"]


def run_ours_sim(d: dict[str, np.ndarray], target: np.ndarray) -> tuple[float, float]:
    t0 = time.perf_counter()
    res = run_backtest(d, target=target, config=BacktestConfig(cash=CASH, commission=FEE))
    return time.perf_counter() - t0, res.metrics["final_equity"]


# --------------------------------------------------------------------------- vectorbt


def _vbt_signals(d: dict[str, np.ndarray], fast_w, slow_w):
    import pandas as pd
    import vectorbt as vbt

    close = pd.Series(d["close"], index=pd.DatetimeIndex(d["time"]))
    open_ = pd.Series(d["open"], index=close.index)
    fast = vbt.MA.run(close, fast_w, short_name="fast")
    slow = vbt.MA.run(close, slow_w, short_name="slow")
    # signal on close, executed at the next bar's open
    entries = fast.ma_crossed_above(slow).shift(1, fill_value=False).astype(bool)
    exits = fast.ma_crossed_below(slow).shift(1, fill_value=False).astype(bool)
    return close, open_, entries, exits


def _vbt_portfolio(close, open_, entries, exits):
    import vectorbt as vbt

    return vbt.Portfolio.from_signals(
        close,
        entries,
        exits,
        price=open_,
        fees=FEE,
        init_cash=CASH,
        size=np.inf,
        size_granularity=1,
        freq="1min",
    )


def run_vectorbt(d: dict[str, np.ndarray], stats: bool = False):
    t0 = time.perf_counter()
    close, open_, entries, exits = _vbt_signals(d, FAST, SLOW)
    pf = _vbt_portfolio(close, open_, entries, exits)
    total = pf.total_return()
    if stats:
        pf.stats()
    dt = time.perf_counter() - t0
    rec = pf.trades.records
    closed = [
        (int(e), int(x))
        for e, x, s in zip(rec["entry_idx"], rec["exit_idx"], rec["status"], strict=True)
        if s == 1
    ]
    return dt, closed, float(pf.final_value()), float(total)


def run_vectorbt_sim(d: dict[str, np.ndarray], signals) -> tuple[float, float]:
    close, open_, entries, exits = signals
    t0 = time.perf_counter()
    pf = _vbt_portfolio(close, open_, entries, exits)
    pf.total_return()
    dt = time.perf_counter() - t0
    return dt, float(pf.final_value())


# --------------------------------------------------------------------------- backtesting.py


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
    df = pd.DataFrame(
        {"Open": d["open"], "High": d["high"], "Low": d["low"], "Close": d["close"], "Volume": d["volume"]},
        index=pd.DatetimeIndex(d["time"]),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = Backtest(df, SmaCross, cash=CASH, commission=FEE, finalize_trades=False).run()
    dt = time.perf_counter() - t0
    tr = stats["_trades"]
    trades = list(zip(tr["EntryBar"].astype(int), tr["ExitBar"].astype(int), strict=True))
    return dt, [(int(a), int(b)) for a, b in trades], float(stats["Equity Final [$]"])


# --------------------------------------------------------------------------- sweep


def sweep_vectorbt(d: dict[str, np.ndarray]) -> tuple[float, np.ndarray]:
    fast_w = [f for f in SWEEP_FAST for _ in SWEEP_SLOW]
    slow_w = [s for _ in SWEEP_FAST for s in SWEEP_SLOW]
    t0 = time.perf_counter()
    close, open_, entries, exits = _vbt_signals(d, fast_w, slow_w)
    pf = _vbt_portfolio(close, open_, entries, exits)
    total = pf.total_return()
    return time.perf_counter() - t0, np.asarray(total, dtype=float)


def sweep_ours(d: dict[str, np.ndarray]) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    res = run_sweep(
        d,
        "sma_crossover",
        {"fast": SWEEP_FAST, "slow": SWEEP_SLOW},
        BacktestConfig(cash=CASH, commission=FEE),
        metric="total_return",
    )
    dt = time.perf_counter() - t0
    return dt, np.array([r["metrics"]["total_return"] for r in res.rows])


# --------------------------------------------------------------------------- first call


def first_call_seconds() -> tuple[float, float]:
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000,5000000")
    ap.add_argument("--bt-max", type=int, default=5_000_000, help="largest size backtesting.py runs at")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sweep-bars", type=int, default=100_000, help="0 skips the sweep")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    t0 = time.perf_counter()
    warm = random_walk(2000, seed=1)
    run_vectorbt(warm, stats=True)  # numba JIT compile, excluded from timings
    run_vectorbt_sim(warm, _vbt_signals(warm, FAST, SLOW))
    if args.sweep_bars:
        sweep_vectorbt(warm)
    print(f"vectorbt warm-up (numba compile, excluded): {time.perf_counter() - t0:.1f} s", flush=True)
    run_ours(warm)

    rows = []
    for n in sizes:
        d = random_walk(n)
        rep = args.repeat if n <= 1_000_000 else min(args.repeat, 2)
        ours, vbt, vbt_stats, ours_sim, vbt_sim = [], [], [], [], []
        target = StrategyFactory.create("sma_crossover", {"fast": FAST, "slow": SLOW}).target_positions(d)
        signals = _vbt_signals(d, FAST, SLOW)
        for _ in range(rep):  # interleaved: a load spike hits both sides
            ours.append(run_ours(d))
            vbt.append(run_vectorbt(d))
            ours_sim.append(run_ours_sim(d, target))
            vbt_sim.append(run_vectorbt_sim(d, signals))
        vbt_stats.append(run_vectorbt(d, stats=True))
        best = {
            k: min(v, key=lambda r: r[0]) for k, v in (("ours", ours), ("vbt", vbt), ("vbt_stats", vbt_stats))
        }
        o_t, o_tr, o_eq = best["ours"]
        v_t, v_tr, v_eq, _ = best["vbt"]
        assert v_tr == o_tr, f"trade mismatch vs vectorbt at n={n}"
        assert abs(v_eq - o_eq) <= 1e-6 * abs(o_eq), (v_eq, o_eq)
        row = {
            "n": n,
            "trades": len(o_tr),
            "ours": o_t,
            "vbt": v_t,
            "vbt_stats": best["vbt_stats"][0],
            "ours_sim": min(r[0] for r in ours_sim),
            "vbt_sim": min(r[0] for r in vbt_sim),
        }
        if n <= args.bt_max:
            b_t, b_tr, b_eq = run_backtesting_py(d)
            assert b_tr == o_tr, f"trade mismatch vs backtesting.py at n={n}"
            assert abs(b_eq - o_eq) <= 1e-6 * abs(b_eq), (b_eq, o_eq)
            row["bt"] = b_t
        rows.append(row)
        print(
            f"n={n:,}: ours {o_t:.3f} s, vectorbt {v_t:.3f} s ({v_t / o_t:.2f}x), trades {len(o_tr):,}",
            flush=True,
        )

    sweep = None
    if args.sweep_bars:
        d = random_walk(args.sweep_bars)
        vs, os_ = [], []
        for _ in range(args.repeat):
            vs.append(sweep_vectorbt(d))
            os_.append(sweep_ours(d))
        (v_t, v_tot), (o_t, o_tot) = min(vs, key=lambda r: r[0]), min(os_, key=lambda r: r[0])
        assert np.max(np.abs(v_tot - o_tot)) < 1e-9, np.max(np.abs(v_tot - o_tot))
        sweep = (args.sweep_bars, v_t, o_t)

    first, wall = first_call_seconds()
    load = os.getloadavg()
    print()
    print(f"load average during the run: {load[0]:.1f} (1 min) / {load[1]:.1f} (5 min), 2 cores")
    print()
    print(
        "| bars | trades | ours s | vectorbt s | vectorbt + stats() s | backtesting.py s "
        "| ours vs vectorbt | vs vectorbt + stats() | vs backtesting.py |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        bt = r.get("bt")
        bt_s, bt_x = ("-", "-") if bt is None else (f"{bt:.2f}", f"{bt / r['ours']:.0f}x")
        print(
            f"| {r['n']:,} | {r['trades']:,} | {r['ours']:.3f} | {r['vbt']:.3f} | {r['vbt_stats']:.3f} "
            f"| {bt_s} "
            f"| **{r['vbt'] / r['ours']:.2f}x** | {r['vbt_stats'] / r['ours']:.2f}x | {bt_x} |"
        )
    print()
    print("Simulation only (signals computed beforehand):")
    print()
    print("| bars | ours `run_backtest(target=...)` s | vectorbt `from_signals + total_return` s | ratio |")
    print("|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['n']:,} | {r['ours_sim']:.3f} | {r['vbt_sim']:.3f} | {r['vbt_sim'] / r['ours_sim']:.2f}x |"
        )
    if sweep:
        n, v_t, o_t = sweep
        print()
        print(
            f"Sweep, {len(SWEEP_FAST) * len(SWEEP_SLOW)} combinations on {n:,} bars: ours {o_t:.3f} s, "
            f"vectorbt vectorised {v_t:.3f} s: **{v_t / o_t:.2f}x**"
        )
    print()
    print(f"First call in a fresh process (imports + 10k bars): {first:.3f} s in-process, {wall:.3f} s wall")
    print("Same trades (entry/exit bars) and final equity as vectorbt and backtesting.py: asserted per size.")


if __name__ == "__main__":
    main()
