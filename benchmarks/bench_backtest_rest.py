"""Benchmark: a large backtest through REST, submit to summary, against the bare engine.

Builds a seeded 1-minute random walk as CSV (ISO timestamps), uploads it to
``POST /api/v1/backtest/upload`` (multipart) of an in-process app (Flask test client, embedded job
runner, a fresh SQLite file or ``--database``), waits for the job and reads the summary with
``GET /api/v1/backtest/{id}``. Reported: upload+parse+queue (the POST), job run, summary GET,
the total, and the engine alone (``run_backtest`` on the same arrays) for the ratio.

    .venv/bin/python benchmarks/bench_backtest_rest.py [--bars 1000000] [--database URL]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_backtest import random_walk  # noqa: E402


def csv_bytes(d: dict) -> bytes:
    import numpy as np

    t = np.datetime_as_string(d["time"].astype("datetime64[s]"))
    cols = np.column_stack([d[k] for k in ("open", "high", "low", "close", "volume")])
    buf = io.StringIO()
    buf.write("datetime,open,high,low,close,volume\n")
    body = np.char.add(np.char.add(t, ","), [",".join(map(repr, r)) for r in cols.tolist()])
    buf.write("\n".join(body.tolist()))
    buf.write("\n")
    return buf.getvalue().encode()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--database", default=None)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    os.environ.setdefault("APP_ENV", "development")
    from flask_migrate import upgrade

    from backend import create_app
    from backend.domain.backtest import BacktestConfig, run_backtest
    from backend.domain.strategies import StrategyFactory
    from backend.extensions import db
    from backend.services import auth, jobs

    app = create_app(
        {
            "ENV_NAME": "testing",
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": args.database or f"sqlite:///{tmp}/bench.db",
            "REDIS_URL": None,
            "JOBS_BACKEND": "embedded",
            "LOG_LEVEL": "WARNING",
            "RATELIMIT_ENABLED": False,
        }
    )
    with app.app_context():
        upgrade()
        auth.create_user("bench@example.com", "correct-horse-battery", "trader")
        db.session.commit()
        token = auth.login("bench@example.com", "correct-horse-battery").access_token
    headers = {"Authorization": f"Bearer {token}"}
    d = random_walk(args.bars)
    d["time"] = __import__("numpy").datetime64("2020-01-01T00:00") + __import__("numpy").arange(
        args.bars
    ).astype("timedelta64[m]")
    raw = csv_bytes(d)
    body = {
        "strategy": "sma_crossover",
        "params": {"fast": 10, "slow": 20},
        "cash": "10000",
        "costs": {"model": "flat", "rate": 0.002},
    }
    client = app.test_client()
    t0 = time.perf_counter()
    resp = client.post(
        "/api/v1/backtest/upload",
        data={"request": json.dumps(body), "file": (io.BytesIO(raw), "bars.csv")},
        content_type="multipart/form-data",
        headers=headers,
    )
    t1 = time.perf_counter()
    assert resp.status_code == 202, resp.get_json()
    job_id = resp.get_json()["id"]
    jobs.runner(app).wait(job_id, timeout=600)
    t2 = time.perf_counter()
    summary = client.get(f"/api/v1/backtest/{job_id}", headers=headers)
    t3 = time.perf_counter()
    s = summary.get_json()
    assert s["status"] == "succeeded", s
    strat = StrategyFactory.create("sma_crossover", {"fast": 10, "slow": 20})
    e0 = time.perf_counter()
    ref = run_backtest(d, strat, BacktestConfig(cash=10_000, commission=0.002))
    e1 = time.perf_counter()
    assert abs(ref.metrics["final_equity"] - s["result"]["metrics"]["final_equity"]) < 1e-6
    print(f"bars {args.bars:,}  csv {len(raw) / 1e6:.1f} MB  summary {len(summary.data):,} bytes")
    print(f"POST upload (stream + parse + validate + store) {t1 - t0:.2f} s")
    print(f"job (load arrays + engine + store curve/trades)  {t2 - t1:.2f} s")
    print(f"GET summary                                      {t3 - t2:.3f} s")
    print(f"submit -> summary                                {t3 - t0:.2f} s")
    print(
        f"engine alone                                     {e1 - e0:.2f} s"
        f"  (REST/engine {(t3 - t0) / (e1 - e0):.1f}x)"
    )


if __name__ == "__main__":
    main()
