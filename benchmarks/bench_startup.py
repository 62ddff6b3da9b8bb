"""Start-up: a fresh process imports the app, runs create_app and answers its first request.

Compared in the same run with a bare Flask app doing the same, so the ratio shows our overhead.
Each variant runs N times in fresh interpreters; we report the median wall time.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_STARTUP_RUNS", "7"))

OURS = """
from backend import create_app
app = create_app({"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": "sqlite://", "LOG_LEVEL": "WARNING"})
resp = app.test_client().get("/health/live")
assert resp.status_code == 200, resp.status_code
print("ready", flush=True)
"""

BARE = """
from flask import Flask
app = Flask(__name__)
@app.get("/health/live")
def live():
    return {"status": "ok"}
resp = app.test_client().get("/health/live")
assert resp.status_code == 200
print("ready", flush=True)
"""

# The floor: bare Flask plus importing the extensions the design card mandates.
FLOOR = "import flask_sqlalchemy, flask_socketio, flask_restx, flask_limiter, marshmallow, apispec\n" + BARE


def _time(code: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # A deployed app has bytecode caches (site-packages got theirs from pip); let the warm-up run
    # write ours too, or every run would re-compile the project's modules from source.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    # Timed from spawn to the first answered request ("ready" on stdout); interpreter shutdown is
    # not start-up (limits' in-memory storage keeps a non-daemon timer thread that delays exit).
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=tempfile.gettempdir(), env=env, stdout=subprocess.PIPE, text=True
    )
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    proc.stdout.close()
    if proc.wait(timeout=60) != 0 or line.strip() != "ready":
        raise RuntimeError(f"start-up probe failed: {line!r}")
    return elapsed


def main() -> dict:
    _time(OURS)  # warm the OS file cache and .pyc files once for both
    _time(BARE)
    ours, bare, floor = [], [], []
    for _ in range(RUNS):  # interleaved so machine noise hits all alike
        ours.append(_time(OURS))
        bare.append(_time(BARE))
        floor.append(_time(FLOOR))
    result = {
        "ours_median_s": statistics.median(ours),
        "bare_median_s": statistics.median(bare),
        "floor_median_s": statistics.median(floor),
    }
    result["ratio"] = result["ours_median_s"] / result["bare_median_s"]
    result["floor_ratio"] = result["floor_median_s"] / result["bare_median_s"]
    print("| start-up (fresh process: import + create_app + first request) | median s | vs bare Flask |")
    print("|---|---:|---:|")
    print(f"| this platform | {result['ours_median_s']:.3f} | {result['ratio']:.2f}x |")
    print(
        f"| bare Flask + mandated extensions imported (floor) | {result['floor_median_s']:.3f} "
        f"| {result['floor_ratio']:.2f}x |"
    )
    print(f"| bare Flask | {result['bare_median_s']:.3f} | 1.00x |")
    print(f"\nruns per variant: {RUNS}; goal: < 1 s and within 3x of bare Flask")
    return result


if __name__ == "__main__":
    main()
