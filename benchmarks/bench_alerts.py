"""Alert engine throughput: indexed AlertEngine vs NaiveAlertEngine on the same seeded tick stream.

    .venv/bin/python benchmarks/bench_alerts.py [--rules 100000] [--symbols 500] [--ticks 50000]

The naive engine scans every rule per tick, so it runs only the first ``--naive-ticks`` ticks; rates
are per tick. Both engines' firings on that common prefix are compared as a sanity check.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.domain.alerts import AlertEngine, AlertRule, NaiveAlertEngine  # noqa: E402
from backend.domain.market.types import Tick  # noqa: E402

T0 = datetime(2024, 1, 2, 9, 15, tzinfo=UTC)


MIXES = {
    "level": "level kinds only",
    "mixed": "96% level, 4% pct/volume/RSI/SMA (60 s bars)",
    "mixed-1s": "96% level, 4% pct/volume/RSI/SMA (1 s bars: a bar closes on every tick)",
}


def make_rules(n: int, symbols: list[str], base: dict[str, Decimal], mix: str, seed: int):
    rng = random.Random(seed)
    rules = []
    for i in range(n):
        sym = symbols[i % len(symbols)]
        p = base[sym]
        r = rng.random()
        tf = 1 if mix == "mixed-1s" else 60
        if mix == "level" or r < 0.96:
            kind = rng.choice(["price_above", "price_below", "cross_up", "cross_down"])
            level = (p * Decimal(1 + rng.uniform(-0.05, 0.05))).quantize(Decimal("0.05"))
            params = {"level": level}
        elif r < 0.98:
            kind, params = "pct_change", {"pct": 1, "window_seconds": 60, "direction": "abs"}
        elif r < 0.99:
            kind, params = "volume_spike", {"factor": 3, "window": 20}
        elif r < 0.995:
            kind = "indicator"
            params = {"indicator": "rsi", "period": 14, "op": "above", "level": 70, "timeframe_seconds": tf}
        else:
            kind = "indicator"
            params = {
                "indicator": "sma_cross",
                "fast": 5,
                "slow": 20,
                "direction": "up",
                "timeframe_seconds": tf,
            }
        rules.append(
            AlertRule(
                id=i,
                user_id=i // 100,
                symbol=sym,
                kind=kind,
                params=params,
                recurring=rng.random() < 0.8,
                cooldown_seconds=rng.choice([0, 30, 300]),
            )
        )
    return rules


def make_ticks(n: int, symbols: list[str], base: dict[str, Decimal], seed: int) -> list[Tick]:
    rng = random.Random(seed)
    prices = dict(base)
    ticks = []
    for i in range(n):
        sym = rng.choice(symbols)
        p = prices[sym] * Decimal(1 + rng.gauss(0, 0.002))
        p = p.quantize(Decimal("0.05"))
        prices[sym] = p
        ticks.append(Tick(sym, p, p, p, rng.randint(1, 500), T0 + timedelta(milliseconds=10 * i)))
    return ticks


def run(engine, ticks: list[Tick]) -> tuple[float, int, list]:
    fired = []
    start = time.perf_counter()
    for t in ticks:
        fired.append(engine.on_tick(t))
    return time.perf_counter() - start, sum(len(f) for f in fired), fired


def bench(args: argparse.Namespace, mix: str) -> dict:
    symbols = [f"SYM{i:03d}" for i in range(args.symbols)]
    rng = random.Random(args.seed)
    base = {s: Decimal(rng.randint(50, 5000)) for s in symbols}
    rules = make_rules(args.rules, symbols, base, mix, args.seed)
    ticks = make_ticks(args.ticks, symbols, base, args.seed + 1)
    out = {"mix": MIXES[mix]}
    for name, cls, n in (
        ("AlertEngine", AlertEngine, args.ticks),
        ("NaiveAlertEngine", NaiveAlertEngine, args.naive_ticks),
    ):
        eng = cls(max_rules_per_user=1000)
        t0 = time.perf_counter()
        for r in rules:
            eng.add(r)
        load_s = time.perf_counter() - t0
        elapsed, n_fired, fired = run(eng, ticks[:n])
        out[name] = {"ticks": n, "seconds": elapsed, "rate": n / elapsed, "fired": n_fired, "load_s": load_s}
        out[name + "_firings"] = fired
    k = args.naive_ticks
    same = [[f.rule_id for f in x] for x in out["AlertEngine_firings"][:k]] == [
        [f.rule_id for f in x] for x in out["NaiveAlertEngine_firings"]
    ]
    out["agree"] = same
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", type=int, default=100_000)
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--ticks", type=int, default=50_000)
    ap.add_argument("--naive-ticks", type=int, default=300)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--mix", action="append", choices=list(MIXES), help="repeatable; default: all")
    args = ap.parse_args()
    print(f"{args.rules:,} active rules over {args.symbols} symbols, seed {args.seed}\n")
    print("| rule mix | engine | ticks | seconds | ticks/s | firings | load rules (s) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    summaries = []
    for mix in args.mix or list(MIXES):
        res = bench(args, mix)
        for name in ("AlertEngine", "NaiveAlertEngine"):
            r = res[name]
            print(
                f"| {res['mix']} | {name} | {r['ticks']:,} | {r['seconds']:.2f} | {r['rate']:,.0f} "
                f"| {r['fired']:,} | {r['load_s']:.2f} |"
            )
        speedup = res["AlertEngine"]["rate"] / res["NaiveAlertEngine"]["rate"]
        summaries.append((res["mix"], speedup, res["AlertEngine"]["rate"], res["agree"]))
    print()
    for mix, speedup, rate, agree in summaries:
        ok = "PASS" if speedup >= 50 and rate >= 20_000 else "FAIL"
        print(
            f"- {mix}: speed-up {speedup:,.0f}x, {rate:,.0f} ticks/s "
            f"(goal >= 50x and >= 20,000 ticks/s: {ok}); firings on common prefix identical: {agree}"
        )


if __name__ == "__main__":
    main()
