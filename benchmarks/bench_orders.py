"""Order placement through the full stack: gunicorn on loopback, PostgreSQL and Redis.

Measures, in one run against one server:
* ``/health/live`` closed-loop throughput (the framework ceiling on this machine);
* ``POST /api/v1/orders`` (MARKET BUY 1 share, risk checks, fill, ledger, events) closed-loop throughput;
* ``POST /api/v1/orders`` latency p50/p95/p99 at a fixed 200 orders/s (open loop).

Bounded request counts, loopback only. Needs PostgreSQL (BENCH_DATABASE_URL, default
postgresql://postgres@127.0.0.1:5432/trading_bench, recreated) and Redis (BENCH_REDIS_URL).
Prints a markdown table.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/trading_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))
THREADS = int(os.environ.get("BENCH_THREADS", "4"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "16"))
N_HEALTH = int(os.environ.get("BENCH_N_HEALTH", "4000"))
N_ORDERS = int(os.environ.get("BENCH_N_ORDERS", "3000"))
RATE = float(os.environ.get("BENCH_RATE", "200"))
RATE_SECONDS = float(os.environ.get("BENCH_RATE_SECONDS", "5"))
USERS = 16


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(cfg_path: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEST_")}
    env.update(
        {
            "APP_ENV": "development",
            "DATABASE_URL": DB_URL,
            "REDIS_URL": REDIS_URL,
            "SECRET_KEY": "bench-secret-key-0123456789abcdef0123456789",
            "JWT_SECRET_KEY": "bench-jwt-key-0123456789abcdef0123456789abcd",
            "OPEN_REGISTRATION": "true",
            "RATELIMIT_DEFAULT": "10000000 per minute",
            "RATELIMIT_LOGIN": "10000 per minute",
            "RATELIMIT_ORDERS": "10000000 per minute",
            "LOG_LEVEL": "WARNING",
            "MARKET_DATA_PROVIDER": "simulated",
            "FEED_AUTOSTART": "false",
            "TRADING_CONFIG": cfg_path,
            "PAPER_STARTING_CASH": "100000000000",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def _prepare_db(env: dict) -> None:
    name = DB_URL.rsplit("/", 1)[1]
    admin = DB_URL.rsplit("/", 1)[0] + "/postgres"
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    flask = str(Path(sys.executable).parent / "flask")
    subprocess.run(
        [flask, "--app", "wsgi:app", "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def _closed_loop(n: int, fn) -> tuple[float, list[float], int]:
    lat: list[float] = []
    errors = 0
    lock = threading.Lock()
    per = n // CLIENTS

    def run(i: int) -> None:
        nonlocal errors
        s = requests.Session()
        for j in range(per):
            t0 = time.perf_counter()
            ok = fn(s, i, j)
            dt = time.perf_counter() - t0
            with lock:
                lat.append(dt)
                errors += not ok

    t0 = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(run, range(CLIENTS)))
    return per * CLIENTS / (time.perf_counter() - t0), lat, errors


def _open_loop(rate: float, seconds: float, fn) -> tuple[list[float], int]:
    total = int(rate * seconds)
    lat: list[float] = []
    errors = 0
    lock = threading.Lock()
    start = time.perf_counter()
    local = threading.local()

    def one(k: int) -> None:
        nonlocal errors
        due = start + k / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        s = getattr(local, "s", None) or requests.Session()
        local.s = s
        t0 = time.perf_counter()
        ok = fn(s, k % USERS, k)
        with lock:
            lat.append(time.perf_counter() - t0)
            errors += not ok

    with ThreadPoolExecutor(64) as pool:
        list(pool.map(one, range(total)))
    return lat, errors


def main() -> dict:
    cfg = yaml.safe_load((ROOT / "config" / "trading.yaml").read_text())
    cfg["risk"].update({"max_orders_per_day": 10**9, "max_position_qty": 10**9, "max_position_value": 10**12})
    tmp = tempfile.mkdtemp(prefix="bench-orders-")
    cfg_path = os.path.join(tmp, "trading.yaml")
    Path(cfg_path).write_text(yaml.safe_dump(cfg))
    env = _env(cfg_path)
    _prepare_db(env)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    log_file = open(os.path.join(tmp, "gunicorn.log"), "w")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [
            gunicorn,
            "-w",
            str(WORKERS),
            "-k",
            "gthread",
            "--threads",
            str(THREADS),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log_file,
    )
    try:
        for _ in range(100):
            try:
                if requests.get(f"{base}/health/live", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        tokens = []
        for i in range(USERS):
            email = f"bench{i}@example.com"
            requests.post(
                f"{base}/api/v1/auth/register", json={"email": email, "password": "bench-password-123"}
            )
            r = requests.post(
                f"{base}/api/v1/auth/login", json={"email": email, "password": "bench-password-123"}
            )
            tokens.append({"Authorization": f"Bearer {r.json()['access_token']}"})
            requests.get(f"{base}/api/v1/portfolio", headers=tokens[-1])  # create the default account
        body = {"symbol": "RELIANCE", "side": "BUY", "type": "MARKET", "product": "D", "quantity": 1}

        def health(s, i, j) -> bool:
            return s.get(f"{base}/health/live").status_code == 200

        def order(s, i, j) -> bool:
            r = s.post(f"{base}/api/v1/orders", json=body, headers=tokens[i % USERS])
            return r.status_code == 201

        for _ in range(200):  # warm-up both paths in every worker
            order(requests, 0, 0)
            health(requests, 0, 0)
        h_rps, h_lat, h_err = _closed_loop(N_HEALTH, health)
        o_rps, o_lat, o_err = _closed_loop(N_ORDERS, order)
        r_lat, r_err = _open_loop(RATE, RATE_SECONDS, order)
    finally:
        proc.terminate()
        proc.wait(10)
        log_file.close()
    ms = 1000.0
    rows = [
        ("/health/live (ceiling)", h_rps, h_lat, h_err),
        ("POST /orders closed loop", o_rps, o_lat, o_err),
        (f"POST /orders at {RATE:.0f}/s", len(r_lat) / RATE_SECONDS, r_lat, r_err),
    ]
    print(
        f"\n{WORKERS} gunicorn gthread workers x {THREADS} threads, {CLIENTS} clients, PostgreSQL + Redis\n"
    )
    print("| scenario | req/s | p50 ms | p95 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, rps, lat, err in rows:
        print(
            f"| {name} | {rps:.0f} | {statistics.median(lat) * ms:.1f} | {_pct(lat, 95) * ms:.1f} | "
            f"{_pct(lat, 99) * ms:.1f} | {err} |"
        )
    ratio = o_rps / h_rps
    print(
        f"\norder throughput / ceiling = {ratio:.0%} (goal >= 35%); p99 at {RATE:.0f}/s = "
        f"{_pct(r_lat, 99) * ms:.1f} ms (goal < 25 ms)"
    )
    return {"health_rps": h_rps, "orders_rps": o_rps, "ratio": ratio, "p99_at_rate_ms": _pct(r_lat, 99) * ms}


if __name__ == "__main__":
    main()
