"""Index computation: weighting methods side by side, and appending a day vs recomputing.

    .venv/bin/python benchmarks/bench_indices.py [--assets 50] [--days 1260] [--repeat 3]

A seeded GBM of ``--assets`` instruments over ``--days`` sessions (5 years of NSE days by
default), monthly rebalancing with the shipped charge schedule (config/trading.yaml), 60-return
covariance window. Each timed call is ``run_index`` over the whole range (weights at every
rebalance, trades with charges solved to the paisa, the daily value series); best of ``--repeat``.
"Append 1 day" continues from the stored holdings of the day before (what POST /compute does after
the first computation) and is compared with recomputing the full 5 years.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.domain.charges import ChargeSchedule  # noqa: E402
from backend.domain.portfolio import IndexSpec, run_index  # noqa: E402

LOOKBACK = 60


def _data(assets: int, days: int) -> tuple[list[date], np.ndarray]:
    rng = np.random.default_rng(2024)
    vol = rng.uniform(0.15, 0.45, assets) / np.sqrt(252)
    market = rng.normal(0, 0.01, days + LOOKBACK)
    r = 0.6 * market[:, None] * (vol / vol.mean()) + rng.normal(0, 1, (days + LOOKBACK, assets)) * vol
    closes = 100 * np.cumprod(1 + r, axis=0)
    out, d = [], date(2019, 1, 1)
    while len(out) < days + LOOKBACK:
        if d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    return out, closes


def _best(fn, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--assets", type=int, default=50)
    ap.add_argument("--days", type=int, default=1260)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rest", action="store_true", help="also time POST /compute through the app (SQLite)")
    args = ap.parse_args()
    days, closes = _data(args.assets, args.days)
    symbols = tuple(f"S{i:03d}" for i in range(args.assets))
    sched = ChargeSchedule.default()
    print(f"{args.assets} instruments x {args.days} days, monthly, charges on, best of {args.repeat}")
    timings = {}
    for method in ("equal", "inverse_volatility", "risk_parity", "min_variance"):
        spec = IndexSpec(symbols, method, "monthly", lookback=LOOKBACK)
        t, run = _best(
            lambda spec=spec: run_index(spec, days, closes, LOOKBACK, 1e7, schedule=sched), args.repeat
        )
        timings[method] = t
        n_reb, last = len(run.rebalances), run.equity[-1]
        print(f"  {method:20s} {t * 1000:8.1f} ms  ({n_reb} rebalances, last value {last:,.0f})")
    base = timings["equal"]
    for method, t in timings.items():
        print(f"  ratio {method:14s} / equal: {t / base:6.2f}x")

    spec = IndexSpec(symbols, "min_variance", "monthly", lookback=LOOKBACK)
    head = run_index(spec, days[:-1], closes[:-1], LOOKBACK, 1e7, schedule=sched)
    t_full, _ = _best(lambda: run_index(spec, days, closes, LOOKBACK, 1e7, schedule=sched), args.repeat)
    t_one, _ = _best(
        lambda: run_index(spec, days, closes, len(days) - 1, 1e7, schedule=sched, state=head.final),
        args.repeat,
    )
    print(f"  min_variance full recompute {t_full * 1000:8.1f} ms, append 1 day {t_one * 1000:8.3f} ms")
    print(f"  ratio full / append: {t_full / t_one:,.0f}x")
    if args.rest:
        _rest()


def _rest() -> None:
    """POST /compute of every simulated equity over 2020-2024, min variance monthly: first with an
    empty candle store (the simulated provider generates and the store keeps 5 years of bars),
    then a twin index on the stored candles, then an append of nothing new (the no-op path)."""
    import os
    import tempfile

    os.environ.setdefault("TEST_DATABASE_URL_DEFAULT", f"sqlite:///{tempfile.mkdtemp()}/bench.db")
    from backend import create_app
    from backend.domain.market.instruments import seed_instruments
    from backend.extensions import db
    from backend.services import auth
    from tests.conftest import _reset_database, app_config

    app = create_app(app_config())
    _reset_database(app)
    client = app.test_client()
    with app.app_context():
        auth.create_user("bench@example.com", "correct-horse-battery", "trader")
        db.session.commit()
        headers = {
            "Authorization": f"Bearer {auth.login('bench@example.com', 'correct-horse-battery').access_token}"
        }
    symbols = [i.trading_symbol for i in seed_instruments() if i.instrument_type == "EQ"]
    body = {
        "symbols": symbols,
        "weighting": "min_variance",
        "rebalance": "monthly",
        "start_date": "2020-01-01",
    }
    timings = []
    for name in ("cold", "warm"):
        iid = client.post("/api/v1/indices", json={**body, "name": name}, headers=headers).get_json()["id"]
        t = time.perf_counter()
        r = client.post(f"/api/v1/indices/{iid}/compute", json={"end_date": "2024-12-31"}, headers=headers)
        timings.append(time.perf_counter() - t)
        assert r.status_code == 200, r.get_json()
    t = time.perf_counter()
    client.post(f"/api/v1/indices/{iid}/compute", json={"end_date": "2024-12-31"}, headers=headers)
    noop = time.perf_counter() - t
    print(f"REST POST /compute, {len(symbols)} instruments, 2020-2024, min variance monthly:")
    cold, warm = timings
    print(f"  empty candle store {cold:6.2f} s, stored candles {warm:6.2f} s, nothing new {noop:6.3f} s")
    print(f"  ratio cold / warm: {timings[0] / timings[1]:.1f}x")


if __name__ == "__main__":
    main()
