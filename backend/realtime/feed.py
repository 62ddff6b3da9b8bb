"""The live feed: one producer across all processes, a supervisor per process, a watchdog.

Every process runs a *supervisor* task that (1) publishes the symbols its Socket.IO clients want
into the shared interest set, (2) contends for the leader lease and renews it (heartbeat), and
(3) as leader, watches the *producer* task: a producer that died or has not ticked for
``FEED_WATCHDOG_STALL_SECONDS`` is replaced (a new generation). The producer, every
``FEED_INTERVAL_MS``, asks the provider for the next tick of every wanted symbol, updates the LTP
cache, delivers them to Socket.IO clients, then dispatches them on
:data:`backend.realtime.bus.tick_bus`.

Two delivery modes, chosen per connection (``mode`` in the ``subscribe`` payload, default
``SOCKETIO_QUOTE_MODE``):

* ``single``: one ``quote`` event per tick to the room ``quotes:{symbol}`` (through the Redis
  message queue when configured, so every worker's clients get them);
* ``batch``: one ``quotes`` event per cycle and connection, the list of that connection's ticked
  symbols. A Socket.IO emit cannot build per-connection subsets on another worker, so the leader
  publishes the whole cycle once (Redis pub/sub channel :func:`batch_channel`, or a direct call
  without Redis) and every process's :meth:`FeedService.fan_out` emits to its LOCAL connections
  only (``ignore_queue``). Twenty times fewer frames per burst at 20 symbols a connection, which is
  where the fan-out latency went (docs/realtime.md, benchmark section).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from flask import Flask

from backend.extensions import redis_store, socketio
from backend.observability.metrics import (
    FEED_BATCH_ERRORS,
    FEED_LAG,
    FEED_LEADER,
    FEED_RESTARTS,
    FEED_TICK_AGE,
    FEED_TICKS,
)
from backend.realtime.bus import tick_bus
from backend.realtime.leader import Interest, LocalLease, RedisLease

log = logging.getLogger(__name__)

NAMESPACE = "/live"
LEADER_KEY = "feed:leader"
QUOTE_MODES = ("single", "batch")


def batch_channel(client: Any) -> str:
    """The pub/sub channel of cycle batches. Pub/sub ignores the Redis database number, so the
    name carries it: deployments (or test runs) on other databases of one server stay apart."""
    db = client.connection_pool.connection_kwargs.get("db", 0) if client is not None else 0
    return f"feed:quotes:{db}"


def quote_payload(tick: Any) -> dict[str, Any]:
    """The ``quote`` event body: money as strings, ``ts`` ISO-8601 UTC and ``ts_ms`` epoch millis."""
    return {
        "symbol": tick.symbol,
        "ltp": str(tick.ltp),
        "bid": str(tick.bid),
        "ask": str(tick.ask),
        "volume": int(tick.volume),
        "cum_volume": int(tick.cum_volume),
        "ts": tick.ts.isoformat(),
        "ts_ms": int(tick.ts.timestamp() * 1000),
    }


class FeedService:
    def __init__(self, app: Flask) -> None:
        self.app = app
        cfg = app.config
        self.interval = max(cfg.get("FEED_INTERVAL_MS", 1000), 10) / 1000.0
        self.ttl = float(cfg.get("FEED_LEADER_TTL", 5.0))
        self.stall_after = float(cfg.get("FEED_WATCHDOG_STALL_SECONDS", 5.0))
        self.always = {s.upper() for s in cfg.get("FEED_SYMBOLS_ALWAYS", [])}
        client = redis_store.client
        self.lease = (
            RedisLease(client, LEADER_KEY, self.ttl)
            if client is not None
            else LocalLease(LEADER_KEY, self.ttl)
        )
        self.interest = Interest(client)
        self.local_symbols: dict[str, set[str]] = {}  # symbol -> sids in this process
        self.batch_sids: dict[str, frozenset[str]] = {}  # batch-mode sid in this process -> symbols
        self.redis = client
        self.channel = batch_channel(client)
        self.batches_out = 0  # cycle batches fanned out by this process
        self._listen_gen = 0
        self._lock = threading.Lock()
        self.running = False
        self.is_leader = False
        self.generation = 0
        self.restarts = 0
        self.ticks = 0
        self.last_tick_at = 0.0  # monotonic
        self.lag = 0.0
        self._producer_alive: dict[int, bool] = {}
        self._kill: set[int] = set()
        self.last_error: str | None = None
        # Upstox websocket (leader only, MARKET_DATA_PROVIDER=upstox): socket ticks arrive on their
        # own thread; one lock keeps them and a REST cycle from delivering at the same time.
        self.router: Any = None
        self._deliver_lock = threading.Lock()

    # ------------------------------------------------------------------ client interest

    def add_interest(self, sid: str, symbols: list[str]) -> None:
        with self._lock:
            for s in symbols:
                self.local_symbols.setdefault(s, set()).add(sid)
        self.interest.touch(set(symbols), self._interest_ttl())

    def remove_interest(self, sid: str, symbols: list[str] | None = None) -> None:
        with self._lock:
            for s in list(self.local_symbols) if symbols is None else symbols:
                sids = self.local_symbols.get(s)
                if sids is not None:
                    sids.discard(sid)
                    if not sids:
                        del self.local_symbols[s]

    def set_batch(self, sid: str, symbols: set[str] | frozenset[str] | None) -> None:
        """Deliver ``sid``'s quotes as one ``quotes`` list per cycle (``None``: stop, e.g. single mode)."""
        with self._lock:
            if symbols is None:
                self.batch_sids.pop(sid, None)
            else:
                self.batch_sids[sid] = frozenset(symbols)

    def fan_out(self, quotes: list[dict[str, Any]]) -> int:
        """Emit one cycle's ``quotes`` subset to each local batch-mode connection; returns emits made.

        Connections with the same ticked symbols share one emit (one encode, ``to=[sids]``).
        ``ignore_queue``: these sids live in this process, and every process runs its own fan-out.
        """
        with self._lock:
            if not self.batch_sids:
                return 0
            clients = list(self.batch_sids.items())
        by_symbol = {q["symbol"]: q for q in quotes}
        order = list(by_symbol)
        groups: dict[tuple[str, ...], list[str]] = {}
        for sid, syms in clients:
            key = tuple(s for s in order if s in syms)
            if key:
                groups.setdefault(key, []).append(sid)
        for key, sids in groups.items():
            socketio.emit(
                "quotes",
                [by_symbol[s] for s in key],
                to=sids[0] if len(sids) == 1 else sids,
                namespace=NAMESPACE,
                ignore_queue=True,
            )
        self.batches_out += 1
        return len(groups)

    def _publish_batch(self, quotes: list[dict[str, Any]]) -> None:
        if self.redis is None:
            self.fan_out(quotes)  # one process is the whole deployment
        else:
            self.redis.publish(self.channel, json.dumps(quotes, separators=(",", ":")))

    def _listen(self, gen: int) -> None:
        """Per process (with Redis): receive the leader's cycle batches and fan them out locally."""
        import redis

        url = self.app.config.get("REDIS_URL") or redis_store.url
        while self.running and gen == self._listen_gen:
            pubsub = None
            try:
                # Its own connection without the shared client's 2 s socket timeout: it idles.
                conn = redis.Redis.from_url(url, socket_connect_timeout=2, health_check_interval=30)
                pubsub = conn.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                while self.running and gen == self._listen_gen:
                    msg = pubsub.get_message(timeout=1.0)
                    if msg is None or msg.get("type") != "message":
                        continue
                    try:
                        self.fan_out(json.loads(msg["data"]))
                    except Exception:  # noqa: BLE001 - one bad batch must not end the listener
                        FEED_BATCH_ERRORS.labels(stage="fan_out").inc()
                        log.exception("quote batch fan-out failed")
            except Exception as exc:  # noqa: BLE001 - Redis down: retry, the feed keeps going
                self.last_error = f"batch listener: {type(exc).__name__}: {exc}"
                log.warning("quote batch listener error", extra={"error": str(exc)})
                socketio.sleep(1.0)
            finally:
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:  # noqa: BLE001 - closing a broken connection
                        log.debug("pubsub close failed", exc_info=True)

    def _interest_ttl(self) -> float:
        return max(3 * self.interval, 5.0)

    def wanted(self) -> list[str]:
        return sorted(self.interest.active() | tick_bus.wanted_symbols() | self.always)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self.running:
            return
        self.running = True
        socketio.start_background_task(self._supervise)
        if self.redis is not None:
            self._listen_gen += 1  # a stop() + start() must not leave two listeners (double delivery)
            socketio.start_background_task(self._listen, self._listen_gen)

    def stop(self) -> None:
        self.running = False
        self.generation += 1
        self._stop_stream()
        if self.is_leader:
            try:
                self.lease.release()
            except Exception:  # noqa: BLE001 - shutting down anyway
                log.debug("lease release failed", exc_info=True)
        self.is_leader = False
        FEED_LEADER.set(0)

    def kill_producer(self) -> int:
        """Make the current producer die abruptly (no clean-up), as a crash would. For tests/ops."""
        gen = self.generation
        self._kill.add(gen)
        return gen

    def status(self) -> dict[str, Any]:
        age = time.monotonic() - self.last_tick_at if self.last_tick_at else None
        return {
            "running": self.running,
            "leader": self.is_leader,
            "holder": self._holder(),
            "generation": self.generation,
            "restarts": self.restarts,
            "ticks": self.ticks,
            "last_tick_age_seconds": age,
            "lag_seconds": self.lag,
            "interval_seconds": self.interval,
            "local_symbols": sorted(self.local_symbols),
            "batch_clients": len(self.batch_sids),
            "last_error": self.last_error,
            "source": self.router.source if self.router is not None else "provider",
            "stream": self.router.stream.status() if self.router is not None else None,
        }

    def _holder(self) -> str | None:
        try:
            return self.lease.holder()
        except Exception:  # noqa: BLE001 - status must render when Redis is down
            return None

    # ------------------------------------------------------------------ supervisor

    def _supervise(self) -> None:
        heartbeat = max(min(self.ttl / 3.0, 1.0), 0.05)
        while self.running:
            try:
                self._supervise_once()
            except Exception as exc:  # noqa: BLE001 - the supervisor must outlive any failure
                self.last_error = f"supervisor: {type(exc).__name__}: {exc}"
                log.exception("feed supervisor error")
                if self.is_leader:
                    self._lose_leadership("error")
            socketio.sleep(heartbeat)

    def _supervise_once(self) -> None:
        with self._lock:
            mine = set(self.local_symbols)
        self.interest.touch(mine, self._interest_ttl())
        if self.is_leader:
            if not self.lease.renew():
                self._lose_leadership("lease lost")
                return
            self._watchdog()
        elif self.lease.acquire():
            self.is_leader = True
            FEED_LEADER.set(1)
            log.info("feed leadership acquired", extra={"token": self.lease.token})
            self._start_producer()

    def _lose_leadership(self, why: str) -> None:
        log.warning("feed leadership lost", extra={"reason": why})
        self.is_leader = False
        self.generation += 1  # stops the current producer
        FEED_LEADER.set(0)
        self._stop_stream()  # one Upstox connection per user: only the leader holds it

    def _watchdog(self) -> None:
        gen = self.generation
        alive = self._producer_alive.get(gen, False)
        age = time.monotonic() - self.last_tick_at if self.last_tick_at else 0.0
        FEED_TICK_AGE.set(age)
        reason = None
        if not alive:
            reason = "died"
        elif self.last_tick_at and age > max(self.stall_after, 3 * self.interval):
            reason = "stalled"
        if reason:
            self.restarts += 1
            FEED_RESTARTS.labels(reason=reason).inc()
            log.warning("feed producer restarted", extra={"reason": reason, "generation": gen})
            self._start_producer()

    def _start_producer(self) -> None:
        self.generation += 1
        gen = self.generation
        self._producer_alive[gen] = True
        self.last_tick_at = time.monotonic()
        socketio.start_background_task(self._produce, gen)

    # ------------------------------------------------------------------ producer

    def _produce(self, gen: int) -> None:
        from backend.services import market_data as md

        try:
            with self.app.app_context():
                next_at = time.monotonic()
                while self.running and self.is_leader and gen == self.generation:
                    if gen in self._kill:
                        return  # simulated crash: no release, no clean-up
                    self.lag = max(0.0, time.monotonic() - next_at)
                    FEED_LAG.set(self.lag)
                    try:
                        self._cycle(md)
                    except Exception as exc:  # noqa: BLE001 - one bad cycle must not end the feed
                        self.last_error = f"producer: {type(exc).__name__}: {exc}"
                        log.exception("feed cycle failed")
                    finally:
                        from backend.extensions import db

                        db.session.remove()
                    self.last_tick_at = time.monotonic()
                    next_at += self.interval
                    delay = next_at - time.monotonic()
                    if delay < -self.interval:  # far behind: skip missed cycles, don't burst
                        next_at = time.monotonic()
                        delay = 0
                    socketio.sleep(max(delay, 0))
        finally:
            self._producer_alive[gen] = False

    def _cycle(self, md) -> None:
        symbols, _unknown = md.known_symbols(self.wanted())
        if not symbols:
            return
        from backend.extensions import db

        # End the look-up's read transaction before any provider call: the Upstox token provider
        # reads the token store in its own session, and on SQLite (BEGIN IMMEDIATE) an open
        # transaction of this thread would lock it out.
        db.session.commit()
        now = datetime.now(UTC)
        router = self._stream_router(md)
        # With the Upstox websocket, REST polls only what the socket is not streaming right now.
        ticks = router.cycle(symbols, now) if router is not None else md.live_ticks(symbols, now)
        if ticks:
            self.deliver(ticks, md)

    def deliver(self, ticks: list[Any], md: Any = None) -> None:
        """LTP cache, Socket.IO and the tick bus, for one batch of ticks (a cycle or a socket frame)."""
        if md is None:
            from backend.services import market_data as md
        with self._deliver_lock:
            md.record_ticks(ticks, ttl=max(3 * self.interval, 3.0))
            # Clients first: tick-bus subscribers (paper matching, alerts) query the database per
            # tick, which added ~15 ms per cycle to every quote's delivery when they ran first.
            quotes = [quote_payload(t) for t in ticks]
            try:
                self._publish_batch(quotes)  # 1 frame per batch client: before the 1-per-tick emits
            except Exception:  # noqa: BLE001 - single-mode clients and the tick bus still get them
                FEED_BATCH_ERRORS.labels(stage="publish").inc()
                log.exception("quote batch publish failed")
            for q in quotes:
                socketio.emit("quote", q, to=f"quotes:{q['symbol']}", namespace=NAMESPACE)
            tick_bus.publish(ticks)
            self.ticks += len(ticks)
            FEED_TICKS.inc(len(ticks))

    # ------------------------------------------------------------------ Upstox websocket

    def _stream_router(self, md) -> Any:
        from backend.services import upstox_stream

        if self.router is None and upstox_stream.enabled(self.app):
            self.router = upstox_stream.build_router(self.app, md.provider().instruments, self._socket_ticks)
        return self.router

    def _socket_ticks(self, ticks: list[Any]) -> None:
        """Sink of the websocket thread: deliver in an app context, as the producer does."""
        from backend.extensions import db

        with self.app.app_context():
            try:
                self.deliver(ticks)
            finally:
                db.session.remove()

    def _stop_stream(self) -> None:
        router, self.router = self.router, None
        if router is not None:
            router.stream.stop()


def get_feed(app: Flask) -> FeedService:
    feed = app.extensions.get("feed")
    if feed is None:
        feed = app.extensions["feed"] = FeedService(app)
    return feed
