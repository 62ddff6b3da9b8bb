"""Benchmark: a large backtest through REST, submit to summary, against the bare engine.

Builds a seeded 1-minute random walk as CSV (ISO timestamps, ``repr`` floats) and sends it to an
in-process app (Flask test client, embedded job runner, a fresh SQLite file or ``--database``) in
both upload forms, one after the other in the same process:

* ``text/csv``: ``POST /api/v1/backtest/upload/csv?request=...`` with the CSV as the raw body;
* ``multipart``: ``POST /api/v1/backtest/upload`` with parts ``request`` and ``file``.

The multipart body is encoded before the clock starts (a real client's work, not the server's).
For each: the POST (stream + parse + validate + store the arrays), the job (load arrays, engine,
store curve and trades), the summary ``GET /api/v1/backtest/{id}``, and the total, submit ->
summary; then the engine alone (``run_backtest`` on the same arrays) for the ratio. Best of
``--repeat`` runs per form.

    .venv/bin/python benchmarks/bench_backtest_rest.py [--bars 1000000] [--repeat 3] [--database URL]
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
    ap.add_argument("--repeat", type=int, default=3)
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
    d = random_walk(args.bars)  # 1-minute bars from 2020-01-01
    raw = csv_bytes(d)
    body = {
        "strategy": "sma_crossover",
        "params": {"fast": 10, "slow": 20},
        "cash": "10000",
        "costs": {"model": "flat", "rate": 0.002},
    }
    client = app.test_client()
    from urllib.parse import quote

    from werkzeug.test import EnvironBuilder

    env = EnvironBuilder(
        method="POST", data={"request": json.dumps(body), "file": (io.BytesIO(raw), "bars.csv")}
    ).get_environ()
    multipart, multipart_type = env["wsgi.input"].read(), env["CONTENT_TYPE"]

    def once(form: str) -> dict[str, float]:
        t0 = time.perf_counter()
        if form == "text/csv":
            resp = client.post(
                f"/api/v1/backtest/upload/csv?request={quote(json.dumps(body))}",
                data=raw,
                content_type="text/csv",
                headers=headers,
            )
        else:
            resp = client.post(
                "/api/v1/backtest/upload",
                data=multipart,
                content_type=multipart_type,
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
        return {
            "post": t1 - t0,
            "job": t2 - t1,
            "get": t3 - t2,
            "total": t3 - t0,
            "bytes": len(summary.data),
            "final": s["result"]["metrics"]["final_equity"],
        }

    results = {}
    for form in ("text/csv", "multipart"):
        runs = [once(form) for _ in range(args.repeat)]
        results[form] = min(runs, key=lambda r: r["total"])
    strat = StrategyFactory.create("sma_crossover", {"fast": 10, "slow": 20})
    engine = []
    for _ in range(args.repeat):
        e0 = time.perf_counter()
        ref = run_backtest(d, strat, BacktestConfig(cash=10_000, commission=0.002))
        engine.append(time.perf_counter() - e0)
    eng = min(engine)
    for r in results.values():
        assert abs(ref.metrics["final_equity"] - r["final"]) < 1e-6
    load = os.getloadavg()
    print(
        f"bars {args.bars:,}  csv {len(raw) / 1e6:.1f} MB  summary {results['text/csv']['bytes']:,} bytes"
        f"  best of {args.repeat}  load average {load[0]:.1f} / {load[1]:.1f}"
    )
    print()
    print("| step | text/csv body | multipart |")
    print("|---|---:|---:|")
    labels = (
        ("post", "POST (stream, parse, validate, store arrays)"),
        ("job", "job (load arrays, engine, store curve and trades)"),
        ("get", "GET summary"),
        ("total", "**submit -> summary**"),
    )
    for key, label in labels:
        a, b = results["text/csv"][key], results["multipart"][key]
        print(f"| {label} | {a:.3f} s | {b:.3f} s |")
    print(f"| engine alone (`run_backtest`, same arrays) | {eng:.3f} s | {eng:.3f} s |")
    ratios = [results[f]["total"] / eng for f in ("text/csv", "multipart")]
    print(f"| REST / engine | {ratios[0]:.1f}x | {ratios[1]:.1f}x |")


if __name__ == "__main__":
    main()
