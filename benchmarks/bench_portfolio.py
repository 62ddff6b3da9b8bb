"""Benchmark: multi-asset portfolio backtests (backend.domain.backtest.multi) next to the engine.

    .venv/bin/python benchmarks/bench_portfolio.py [--bars 1000000] [--symbols 20] [--days 2500]

1. Overhead against the single-asset engine: SMA(10/20) on one seeded random walk, once with
   ``run_backtest`` and once with ``run_portfolio`` holding it plus a symbol that never trades
   (asserted: identical trades and equity). Both timed end to end (arrays in, metrics out).
2. Portfolio scale: ``--symbols`` random walks of ``--days`` daily bars with a contract-note-like
   cost function: target weights rebalanced monthly and weekly, and per-symbol SMA signals.

Best of 3 runs each, side by side in one process.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.domain.backtest import run_backtest  # noqa: E402
from backend.domain.backtest.multi import run_portfolio  # noqa: E402
from backend.domain.strategies import StrategyFactory  # noqa: E402


def walk(n: int, seed: int, start: str = "2000-01-03", step: str = "D") -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * (1 + rng.normal(0, 0.002, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.003, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.003, n)))
    times = np.datetime64(start, "m") + np.arange(n) * np.timedelta64(1, "m" if step == "m" else "D")
    return {"time": times.astype("datetime64[ns]"), "open": open_, "high": high, "low": low, "close": close}


def best(fn, runs: int = 3) -> tuple[float, object]:
    out, times = None, []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def charges(side: str, qty: float, px: float) -> float:
    value = qty * px
    return min(20.0, 0.0003 * value) + (0.001 if side == "sell" else 0.00015) * value


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--symbols", type=int, default=20)
    ap.add_argument("--days", type=int, default=2500)
    a = ap.parse_args()

    sma = StrategyFactory.create("sma_crossover", {"fast": 10, "slow": 20})
    data = walk(a.bars, 42, step="m")
    line = 100.0 + np.arange(a.bars, dtype=float)
    idle = {"time": data["time"], "open": line, "high": line + 1, "low": line - 1, "close": line}
    t_single, single = best(lambda: run_backtest(data, sma, cash=10_000, commission=0.002))
    t_multi, multi = best(
        lambda: run_portfolio({"A": data, "IDLE": idle}, strategies={"A": sma}, cash=10_000, commission=0.002)
    )
    assert [(t.entry_bar, t.exit_bar, t.size, t.pnl) for t in multi.trades] == [
        (t.entry_bar, t.exit_bar, t.size, t.pnl) for t in single.trades
    ]
    assert np.array_equal(multi.equity, single.equity)
    print("| case | bars x symbols | fills | best of 3 | ratio |")
    print("|---|---:|---:|---:|---:|")
    print(f"| run_backtest, 1 symbol | {a.bars:,} x 1 | {2 * len(single.trades)} | {t_single:.3f} s | 1.00 |")
    print(
        f"| run_portfolio, same + 1 idle symbol | {a.bars:,} x 2 | {len(multi.fills)} | {t_multi:.3f} s "
        f"| {t_multi / t_single:.2f} |"
    )

    universe = {f"S{k:02d}": walk(a.days, 100 + k) for k in range(a.symbols)}
    w = {s: 1.0 / a.symbols for s in universe}
    cases = [
        (
            "weights, monthly",
            lambda: run_portfolio(universe, weights=w, rebalance="monthly", cash=1e7, commission=charges),
        ),
        (
            "weights, weekly",
            lambda: run_portfolio(universe, weights=w, rebalance="weekly", cash=1e7, commission=charges),
        ),
        (
            "signals, SMA 10/20 each",
            lambda: run_portfolio(
                universe, strategies={s: sma for s in universe}, cash=1e7, commission=charges
            ),
        ),
    ]
    for name, fn in cases:
        t, r = best(fn)
        print(f"| {name} | {a.days:,} x {a.symbols} | {len(r.fills):,} | {t:.3f} s | |")


if __name__ == "__main__":
    main()
