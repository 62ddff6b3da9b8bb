"""Socket.IO fan-out benchmark: our /live feed vs a bare python-socketio server.

N clients each subscribe to S symbols; the server ticks every symbol every --interval-ms, so the
offered load is N * S * 1000 / interval messages per second (default 100 * 20 * 1 = 2,000/s).
Each server runs in its own subprocess (threading mode, werkzeug, websocket transport); the clients
share this process. Latency is tick creation (``ts_ms`` stamped by the producer) to receipt.

    .venv/bin/python benchmarks/bench_fanout.py [--clients 100] [--symbols 20] [--interval-ms 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SYMBOLS = [
    "RELIANCE", "TCS", "HDFCBANK", "INFY", "ICICIBANK", "HINDUNILVR", "ITC", "SBIN", "BHARTIARTL",
    "KOTAKBANK", "LT", "AXISBANK", "BAJFINANCE", "ASIANPAINT", "MARUTI", "HCLTECH", "SUNPHARMA",
    "TITAN", "WIPRO", "ULTRACEMCO", "NTPC", "POWERGRID", "TATASTEEL", "ONGC", "TECHM", "NHPC",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- servers


def serve_ours(port: int, interval_ms: int) -> None:
    db = Path(tempfile.mkdtemp(prefix="bench-")) / "bench.db"
    os.environ.update(LOG_LEVEL="WARNING")
    from flask_migrate import upgrade
    from werkzeug.serving import make_server

    from backend import create_app
    from backend.extensions import db as sqla
    from backend.services import auth

    app = create_app(
        {
            "ENV_NAME": "testing",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{db}",
            "REDIS_URL": os.environ.get("BENCH_REDIS_URL"),
            "FEED_AUTOSTART": True,
            "FEED_INTERVAL_MS": interval_ms,
            "SOCKETIO_MAX_SUBSCRIPTIONS": 100,
            "LOG_LEVEL": "WARNING",
        }
    )
    with app.app_context():
        upgrade()
        auth.create_user("bench@example.com", "bench-password-123", "trader")
        sqla.session.commit()
        token = auth.login("bench@example.com", "bench-password-123").access_token
    server = make_server("127.0.0.1", port, app, threaded=True)
    print(json.dumps({"token": token}), flush=True)
    server.serve_forever()


def serve_bare(port: int, interval_ms: int) -> None:
    import socketio
    from werkzeug.serving import make_server

    sio = socketio.Server(async_mode="threading")
    app = socketio.WSGIApp(sio)

    @sio.on("subscribe", namespace="/live")
    def subscribe(sid, data):
        for s in data["symbols"]:
            sio.enter_room(sid, f"quotes:{s}", namespace="/live")
        return {"ok": True}

    def producer():
        next_at = time.monotonic()
        while True:
            now = time.time()
            for s in SYMBOLS:
                payload = {
                    "symbol": s, "ltp": "812.35", "bid": "812.30", "ask": "812.40", "volume": 10,
                    "cum_volume": 1000, "ts": "", "ts_ms": int(now * 1000),
                }  # fmt: skip
                sio.emit("quote", payload, to=f"quotes:{s}", namespace="/live")
            next_at += interval_ms / 1000
            time.sleep(max(0, next_at - time.monotonic()))

    threading.Thread(target=producer, daemon=True).start()
    server = make_server("127.0.0.1", port, app, threaded=True)
    print(json.dumps({"token": None}), flush=True)
    server.serve_forever()


# --------------------------------------------------------------------------- clients


def run_clients(port: int, token: str | None, n: int, symbols: list[str], warmup: float, duration: float):
    import socketio

    lat: list[float] = []
    count = [0]
    lock = threading.Lock()
    measuring = threading.Event()
    clients = []

    def on_quote(msg):
        if measuring.is_set():
            d = time.time() * 1000 - msg["ts_ms"]
            with lock:
                lat.append(d)
                count[0] += 1

    for _ in range(n):
        c = socketio.Client(reconnection=False)
        c.on("quote", on_quote, namespace="/live")
        c.connect(
            f"http://127.0.0.1:{port}",
            namespaces=["/live"],
            auth={"token": token} if token else None,
            transports=["websocket"],
            wait_timeout=30,
        )
        c.call("subscribe", {"symbols": symbols}, namespace="/live", timeout=30)
        clients.append(c)
    time.sleep(warmup)
    measuring.set()
    t0 = time.monotonic()
    time.sleep(duration)
    measuring.clear()
    elapsed = time.monotonic() - t0
    # Disconnect in parallel: each websocket close handshake can take seconds.
    closers = [threading.Thread(target=c.disconnect, daemon=True) for c in clients]
    for t in closers:
        t.start()
    for t in closers:
        t.join(timeout=10)
    lat.sort()

    def pct(p):
        return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")

    return {"rate": count[0] / elapsed, "p50": pct(0.50), "p99": pct(0.99), "n": count[0]}


def bench(kind: str, args) -> dict:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            kind,
            "--port",
            str(port),
            "--interval-ms",
            str(args.interval_ms),
        ],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        token = json.loads(line)["token"]
        return run_clients(port, token, args.clients, SYMBOLS[: args.symbols], args.warmup, args.duration)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--symbols", type=int, default=20)
    p.add_argument("--interval-ms", type=int, default=1000)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--duration", type=float, default=15.0)
    p.add_argument("--serve", choices=["ours", "bare"])
    p.add_argument("--port", type=int)
    args = p.parse_args()
    if args.serve == "ours":
        return serve_ours(args.port, args.interval_ms)
    if args.serve == "bare":
        return serve_bare(args.port, args.interval_ms)
    offered = args.clients * args.symbols * 1000 / args.interval_ms
    results = {k: bench(k, args) for k in ("bare", "ours")}
    print(f"\n{args.clients} clients x {args.symbols} symbols, tick every {args.interval_ms} ms "
          f"(offered {offered:,.0f} msg/s), {args.duration:.0f} s measured\n")  # fmt: skip
    print("| server | delivered msg/s | p50 latency (ms) | p99 latency (ms) |")
    print("|---|---:|---:|---:|")
    for k, r in results.items():
        print(f"| {k} | {r['rate']:,.0f} | {r['p50']:.1f} | {r['p99']:.1f} |")
    ratio = results["ours"]["rate"] / results["bare"]["rate"] if results["bare"]["rate"] else float("nan")
    print(f"\nours / bare delivered rate: {ratio:.1%}")


if __name__ == "__main__":
    main()
