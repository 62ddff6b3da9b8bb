"""Socket.IO fan-out benchmark: our /live feed vs a bare python-socketio server, same run.

N clients each subscribe to S symbols; the server ticks every symbol every --interval-ms, so the
offered load is N * S * 1000 / interval messages per second (default 100 * 20 * 1 = 2,000/s).

Delivery modes (``--modes single,batch``, each server runs once per mode):

* ``single``: one ``quote`` event per tick to the room ``quotes:{symbol}`` (2,000 frames per burst);
* ``batch``: one ``quotes`` event per cycle and client, the list of its ticked symbols (100 frames
  per burst). Ours: the client subscribes with ``mode: "batch"``; bare: the producer groups the
  clients by symbol set and emits each group's list once (``to=[sids]``), as our fan-out does.
  Every quote inside a list counts as one delivered message, with its own latency (same receive
  time, the quote's own ``ts_ms``), so rates and latencies compare across modes.

Servers (each in its own subprocess, one after the other, same client set-up and tick schedule):

* ``bare``: python-socketio ``Server(async_mode="threading")`` under werkzeug, a producer thread
  emitting the same ``quote`` payload shape as ours to the same ``quotes:{symbol}`` rooms on ``/live``;
* ``ours``: ``create_app()`` with the live feed (``python -m backend`` set-up: werkzeug, threading
  mode, simple-websocket), SQLite, no Redis (message queue off) unless ``BENCH_REDIS_URL`` is set;
* ``gunicorn``: the same app under gunicorn ``gthread``, 1 worker, ``clients + 16`` threads (every
  websocket holds a gthread thread for its lifetime).

The clients are spread over --procs processes (asyncio ``socketio.AsyncClient`` + aiohttp, websocket
transport only), so the harness does not serialise on one GIL. Latency is the producer's ``ts_ms``
stamp (epoch ms, same machine clock) to ``time.time()`` at the client callback. Counting happens in a
fixed wall-clock window that every client process shares, after a warm-up. CPU columns are CPU
seconds per wall second (1.0 = one core) of the server process tree and of all client processes.

Experiment knobs (environment, server side): ``BENCH_NO_TICK_BUS=1`` drops our tick-bus subscribers
(paper matching, alerts), ``BENCH_GC_FREEZE=1`` runs ``gc.freeze()`` after start-up,
``BENCH_SWITCHINTERVAL=<s>`` sets the GIL switch interval, ``BENCH_REDIS_URL`` turns the message queue on.

    .venv/bin/python benchmarks/bench_fanout.py [--clients 100] [--symbols 20] [--interval-ms 1000]
        [--procs 4] [--warmup 3] [--duration 15] [--servers bare,ours,gunicorn] [--client raw|socketio]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SYMBOLS = [
    "RELIANCE", "TCS", "HDFCBANK", "INFY", "ICICIBANK", "HINDUNILVR", "ITC", "SBIN", "BHARTIARTL",
    "KOTAKBANK", "LT", "AXISBANK", "BAJFINANCE", "ASIANPAINT", "MARUTI", "HCLTECH", "SUNPHARMA",
    "TITAN", "WIPRO", "ULTRACEMCO", "NTPC", "POWERGRID", "TATASTEEL", "ONGC", "TECHM", "NHPC",
]  # fmt: skip

CONNECT_TIMEOUT = 60.0  # seconds for all clients of one process to connect and subscribe
DRAIN = 1.0  # seconds after the window before a client process reports (late messages are ignored)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(root_pid: int) -> float:
    """utime + stime of ``root_pid`` and all its descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        p = frontier.pop()
        for child, parent in parents.items():
            if parent == p and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(times.get(p, 0.0) for p in tree)


# --------------------------------------------------------------------------- servers


def _setup_ours(interval_ms: int, clients: int, mode: str = "single"):
    db = Path(tempfile.mkdtemp(prefix="bench-")) / "bench.db"
    os.environ.update(LOG_LEVEL="WARNING")
    from flask_migrate import upgrade

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
    if os.environ.get("BENCH_NO_TICK_BUS"):  # experiment knob: no paper-trading/alerts subscribers
        from backend.realtime.bus import tick_bus

        tick_bus.clear()
    if os.environ.get("BENCH_GC_FREEZE"):  # experiment knob
        import gc

        gc.collect()
        gc.freeze()
    print(json.dumps({"token": token}), flush=True)
    return app


def serve_ours(port: int, interval_ms: int, clients: int, mode: str = "single") -> None:
    from werkzeug.serving import make_server

    app = _setup_ours(interval_ms, clients, mode)
    make_server("127.0.0.1", port, app, threaded=True).serve_forever()


def serve_gunicorn(port: int, interval_ms: int, clients: int, mode: str = "single") -> None:
    from gunicorn.app.base import BaseApplication

    class Bench(BaseApplication):
        def load_config(self) -> None:
            for k, v in {
                "bind": f"127.0.0.1:{port}",
                "worker_class": "gthread",
                "workers": 1,  # Flask-SocketIO without a message queue: one worker
                "threads": clients + 16,
                "loglevel": "warning",
                "timeout": 120,
            }.items():
                self.cfg.set(k, v)

        def load(self):
            # Built in the worker (no preload), so the feed's threads live in the serving process.
            return _setup_ours(interval_ms, clients, mode)

    Bench().run()


def serve_bare(port: int, interval_ms: int, clients: int, mode: str = "single") -> None:
    import socketio
    from werkzeug.serving import make_server

    sio = socketio.Server(async_mode="threading")
    app = socketio.WSGIApp(sio)
    batch_sids: dict[str, frozenset[str]] = {}

    @sio.on("subscribe", namespace="/live")
    def subscribe(sid, data):
        if mode == "batch":
            batch_sids[sid] = frozenset(data["symbols"])
        else:
            for s in data["symbols"]:
                sio.enter_room(sid, f"quotes:{s}", namespace="/live")
        return {"ok": True, "symbols": data["symbols"]}

    @sio.on("disconnect", namespace="/live")
    def disconnect(sid, reason=None):
        batch_sids.pop(sid, None)

    def producer():
        next_at = time.monotonic()
        n = 0
        while True:
            now = datetime.now(UTC)
            n += 1
            quotes = [
                # Same shape and sizes as backend.realtime.feed.quote_payload.
                {
                    "symbol": s,
                    "ltp": f"{812 + n % 7}.35",
                    "bid": "812.30",
                    "ask": "812.40",
                    "volume": 10 + n % 5,
                    "cum_volume": 1000 + n,
                    "ts": now.isoformat(),
                    "ts_ms": int(now.timestamp() * 1000),
                }  # fmt: skip
                for s in SYMBOLS
            ]
            if mode == "batch":  # the equivalent of backend.realtime.feed.FeedService.fan_out
                groups: dict[tuple[str, ...], list[str]] = {}
                for sid, syms in list(batch_sids.items()):
                    key = tuple(q["symbol"] for q in quotes if q["symbol"] in syms)
                    if key:
                        groups.setdefault(key, []).append(sid)
                by = {q["symbol"]: q for q in quotes}
                for key, sids in groups.items():
                    to = sids[0] if len(sids) == 1 else sids
                    sio.emit("quotes", [by[s] for s in key], to=to, namespace="/live")
            else:
                for q in quotes:
                    sio.emit("quote", q, to=f"quotes:{q['symbol']}", namespace="/live")
            next_at += interval_ms / 1000
            time.sleep(max(0, next_at - time.monotonic()))

    threading.Thread(target=producer, daemon=True).start()
    server = make_server("127.0.0.1", port, app, threaded=True)
    print(json.dumps({"token": None}), flush=True)
    server.serve_forever()


SERVERS = {"bare": serve_bare, "ours": serve_ours, "gunicorn": serve_gunicorn}


# --------------------------------------------------------------------------- clients


def client_process(
    port: int, token: str | None, n: int, symbols: list[str], kind: str, mode: str, conn
) -> None:
    """One client process: ``n`` asyncio clients; reports (count, latencies ms, cpu s) over ``conn``."""
    asyncio.run(_client_main(port, token, n, symbols, kind, mode, conn))


class RawClient:
    """Socket.IO v5 / Engine.IO v4 over one aiohttp websocket, no client framework.

    The wire protocol python-socketio and socket.io-client speak (open, namespace connect with auth,
    ``subscribe`` with an ack, ``quote`` events, ping/pong), minus the per-message dispatch layers
    (a task per message and several decode steps) that made the socketio client cost the
    harness twice the server's CPU.
    """

    PREFIX = '42/live,["quote",'
    BATCH_PREFIX = '42/live,["quotes",'

    def __init__(self, session, port: int, on_quote, on_quotes, mode: str = "single") -> None:
        self.session, self.port, self.mode = session, port, mode
        self.on_quote, self.on_quotes = on_quote, on_quotes
        self.ws = None
        self.task: asyncio.Task | None = None

    async def connect(self, token: str | None, symbols: list[str]) -> None:
        url = f"ws://127.0.0.1:{self.port}/socket.io/?EIO=4&transport=websocket"
        self.ws = await self.session.ws_connect(url, autoping=False, max_msg_size=0)
        if not (await self.ws.receive_str()).startswith("0{"):
            raise RuntimeError("no Engine.IO open packet")
        await self.ws.send_str("40/live," + (json.dumps({"token": token}) if token else ""))
        body = {"symbols": symbols, **({"mode": "batch"} if self.mode == "batch" else {})}
        await self.ws.send_str("42/live,1" + json.dumps(["subscribe", body]))
        while True:
            msg = await self.ws.receive_str()
            if msg.startswith("44/live"):
                raise RuntimeError(f"namespace refused: {msg}")
            if msg == "2":
                await self.ws.send_str("3")
            elif msg.startswith("43/live,1"):
                ack = json.loads(msg[len("43/live,1") :])[0]
                if not ack.get("ok"):
                    raise RuntimeError(f"subscribe refused: {ack}")
                break
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        import aiohttp

        prefix, n = self.PREFIX, len(self.PREFIX)
        bprefix, bn = self.BATCH_PREFIX, len(self.BATCH_PREFIX)
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = msg.data
            if data.startswith(prefix):
                self.on_quote(json.loads(data[n:-1]))
            elif data.startswith(bprefix):
                self.on_quotes(json.loads(data[bn:-1]))
            elif data == "2":
                await self.ws.send_str("3")

    async def disconnect(self) -> None:
        if self.task:
            self.task.cancel()
        with contextlib.suppress(Exception):
            await self.ws.send_str("41/live,")
            await self.ws.close()


async def _client_main(
    port: int, token: str | None, n: int, symbols: list[str], kind: str, mode: str, conn
) -> None:
    import aiohttp
    import socketio

    window = [float("inf"), float("-inf")]
    lat = array("d")
    errors: list[str] = []

    def on_quote(msg):
        now = time.time()
        if window[0] <= now < window[1]:
            lat.append(now * 1000.0 - msg["ts_ms"])

    def on_quotes(batch):
        now = time.time()
        if window[0] <= now < window[1]:
            ms = now * 1000.0
            lat.extend(ms - q["ts_ms"] for q in batch)

    session = aiohttp.ClientSession()

    async def one():
        if kind == "raw":
            c = RawClient(session, port, on_quote, on_quotes, mode)
            await c.connect(token, symbols)
            return c
        c = socketio.AsyncClient(reconnection=False)
        c.on("quote", on_quote, namespace="/live")
        c.on("quotes", on_quotes, namespace="/live")
        await c.connect(
            f"http://127.0.0.1:{port}",
            namespaces=["/live"],
            auth={"token": token} if token else None,
            transports=["websocket"],
            wait_timeout=30,
        )
        body = {"symbols": symbols, **({"mode": "batch"} if mode == "batch" else {})}
        ack = await c.call("subscribe", body, namespace="/live", timeout=30)
        if not ack.get("ok"):
            raise RuntimeError(f"subscribe refused: {ack}")
        return c

    loop = asyncio.get_running_loop()
    clients: list = []
    try:
        # A few at a time: the threaded servers accept connections one thread each.
        for i in range(0, n, 5):
            clients += await asyncio.wait_for(
                asyncio.gather(*(one() for _ in range(min(5, n - i)))), CONNECT_TIMEOUT
            )
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which aborts the run
        errors.append(f"{type(exc).__name__}: {exc}")
    conn.send({"ready": len(clients), "errors": errors})
    msg = await loop.run_in_executor(None, conn.recv)  # {"start": epoch s, "end": epoch s} or None
    if msg is not None:
        window[0], window[1] = msg["start"], msg["end"]
        await asyncio.sleep(max(0.0, msg["start"] - time.time()))
        cpu0 = time.process_time()
        await asyncio.sleep(max(0.0, msg["end"] - time.time()))
        cpu = time.process_time() - cpu0
        await asyncio.sleep(DRAIN)
        conn.send({"count": len(lat), "lat": lat.tobytes(), "cpu": cpu})
    with contextlib.suppress(Exception):  # exiting anyway (includes TimeoutError)
        await asyncio.wait_for(asyncio.gather(*(c.disconnect() for c in clients)), 10)
    await session.close()


def pct(sorted_vals: list[float], p: float) -> float:
    if not sorted_vals:
        return float("nan")
    return sorted_vals[min(len(sorted_vals) - 1, int(p * len(sorted_vals)))]


def bench(kind: str, mode: str, args) -> dict:
    port = free_port()
    cmd = [sys.executable, __file__, "--serve", kind, "--port", str(port), "--mode", mode]
    cmd += ["--interval-ms", str(args.interval_ms), "--clients", str(args.clients)]
    errlog = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in the finally below
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errlog, cwd=ROOT, text=True)
    procs: list = []
    ctx = mp.get_context("spawn")  # no inherited threads/sockets from the parent
    try:
        line = server.stdout.readline()
        if not line:
            server.wait(timeout=10)
            errlog.seek(0)
            raise RuntimeError(f"{kind} server did not start:\n{errlog.read()[-3000:]}")
        token = json.loads(line)["token"]
        time.sleep(0.5)  # the token is printed just before the listener starts
        symbols = SYMBOLS[: args.symbols]
        per = [args.clients // args.procs + (i < args.clients % args.procs) for i in range(args.procs)]
        pipes = []
        for n in per:
            parent_end, child_end = ctx.Pipe()
            p = ctx.Process(
                target=client_process,
                args=(port, token, n, symbols, args.client, mode, child_end),
                daemon=True,
            )
            p.start()
            procs.append(p)
            pipes.append(parent_end)
        connected = 0
        for conn in pipes:
            if not conn.poll(CONNECT_TIMEOUT + 30):
                raise RuntimeError(f"{kind}: a client process did not report ready")
            r = conn.recv()
            if r["errors"]:
                raise RuntimeError(f"{kind}: client connect failed: {r['errors'][:3]}")
            connected += r["ready"]
        start = time.time() + args.warmup
        end = start + args.duration
        for conn in pipes:
            conn.send({"start": start, "end": end})
        time.sleep(max(0.0, start - time.time()))
        scpu0 = cpu_seconds(server.pid)
        time.sleep(max(0.0, end - time.time()))
        scpu = cpu_seconds(server.pid) - scpu0
        count, lat, ccpu = 0, array("d"), 0.0
        for conn in pipes:
            if not conn.poll(DRAIN + 30):
                raise RuntimeError(f"{kind}: a client process did not report results")
            r = conn.recv()
            count += r["count"]
            ccpu += r["cpu"]
            lat.frombytes(r["lat"])
        vals = sorted(lat)
        return {
            "clients": connected,
            "rate": count / args.duration,
            "p50": pct(vals, 0.50),
            "p99": pct(vals, 0.99),
            "max": vals[-1] if vals else float("nan"),
            "server_cpu": scpu / args.duration,
            "client_cpu": ccpu / args.duration,
        }
    finally:
        for p in procs:
            p.join(timeout=15)
            if p.is_alive():
                p.kill()
        server.terminate()
        errlog.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--symbols", type=int, default=20)
    p.add_argument("--interval-ms", type=int, default=1000)
    p.add_argument("--procs", type=int, default=4, help="client processes")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--duration", type=float, default=15.0)
    p.add_argument("--servers", default="bare,ours,gunicorn")
    p.add_argument("--modes", default="single,batch", help="delivery modes to run, each with every server")
    p.add_argument("--mode", choices=["single", "batch"], default="single", help=argparse.SUPPRESS)
    p.add_argument(
        "--client", choices=["raw", "socketio"], default="raw", help="raw protocol or socketio.AsyncClient"
    )
    p.add_argument("--serve", choices=sorted(SERVERS))
    p.add_argument("--port", type=int)
    args = p.parse_args()
    if args.serve:
        if os.environ.get("BENCH_SWITCHINTERVAL"):  # experiment knob: GIL switch interval (s) in servers
            sys.setswitchinterval(float(os.environ["BENCH_SWITCHINTERVAL"]))
        return SERVERS[args.serve](args.port, args.interval_ms, args.clients, args.mode)
    if not 1 <= args.symbols <= len(SYMBOLS):
        p.error(f"--symbols must be 1..{len(SYMBOLS)}")
    kinds = [k.strip() for k in args.servers.split(",") if k.strip()]
    offered = args.clients * args.symbols * 1000 / args.interval_ms
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not set(modes) <= {"single", "batch"}:
        p.error("--modes: single and/or batch")
    results = {(k, m): bench(k, m, args) for m in modes for k in kinds}
    print(
        f"\n{args.clients} {args.client} clients ({args.procs} processes) x {args.symbols} symbols, tick "
        f"every "
        f"{args.interval_ms} ms (offered {offered:,.0f} msg/s), {args.warmup:.0f} s warm-up, "
        f"{args.duration:.0f} s measured, load average {os.getloadavg()[0]:.2f}\n"
    )
    print(
        "| server | mode | clients | delivered quotes/s | vs bare | p50 ms | p99 ms | max ms | srv CPU "
        "| cli CPU |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (k, m), r in results.items():
        bare = results.get(("bare", m), {}).get("rate")  # the bare server in the same mode
        ratio = f"{r['rate'] / bare:.0%}" if bare else "-"
        print(
            f"| {k} | {m} | {r['clients']} | {r['rate']:,.0f} | {ratio} | {r['p50']:.1f} | {r['p99']:.1f} "
            f"| {r['max']:.1f} | {r['server_cpu']:.2f} | {r['client_cpu']:.2f} |"
        )


if __name__ == "__main__":
    main()
