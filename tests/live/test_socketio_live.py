"""The real server on loopback with a python-socketio client: auth, subscriptions, quotes, private
rooms, the Redis message queue from another process, and producer failover."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import socketio
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[2]
WAIT = 15  # seconds: an upper bound on waiting, not a performance assertion


@pytest.fixture
def live(app):
    """Serve ``app`` (Socket.IO middleware included) on 127.0.0.1 with a fast feed."""
    from backend import realtime, socketio_options
    from backend.extensions import socketio as socketio_ext
    from backend.realtime.bus import tick_bus
    from backend.realtime.feed import FeedService

    # The Socket.IO extension is one object; any app created since the session app (other tests
    # build throw-away apps) re-bound it. Bind it back so emits reach this server's clients.
    socketio_ext.init_app(app, **socketio_options(app))
    realtime.init_app(app)

    saved = {
        k: app.config.get(k) for k in ("FEED_INTERVAL_MS", "FEED_LEADER_TTL", "FEED_WATCHDOG_STALL_SECONDS")
    }
    app.config.update(FEED_INTERVAL_MS=100, FEED_LEADER_TTL=1.0, FEED_WATCHDOG_STALL_SECONDS=1.0)
    old_feed = app.extensions.get("feed")
    feed = FeedService(app)
    app.extensions["feed"] = feed
    feed.start()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    clients: list[socketio.Client] = []

    def connect(auth=None, **kw) -> tuple[socketio.Client, dict[str, queue.Queue]]:
        sio = socketio.Client(reconnection=False)
        events: dict[str, queue.Queue] = {
            n: queue.Queue() for n in ("quote", "quotes", "error", "notice", "ready")
        }
        for name, q in events.items():
            sio.on(name, q.put, namespace="/live")
        sio.connect(
            f"http://127.0.0.1:{server.server_port}",
            namespaces=["/live"],
            auth=auth,
            transports=["websocket"],
            wait_timeout=WAIT,
        )
        clients.append(sio)
        return sio, events

    yield feed, connect
    for c in clients:
        c.disconnect()
    feed.stop()
    server.shutdown()
    tick_bus.clear()
    app.extensions["feed"] = old_feed
    app.config.update(saved)


def _token(headers: dict) -> str:
    return headers["Authorization"].split(" ", 1)[1]


def _quote_for(q: queue.Queue, symbol: str, after_ms: int = 0) -> dict:
    while True:
        msg = q.get(timeout=WAIT)
        if msg["symbol"] == symbol and msg["ts_ms"] > after_ms:
            return msg


def test_authenticated_client_subscribes_and_receives_quotes(live, trader):
    feed, connect = live
    user_id, headers = trader
    sio, ev = connect({"token": _token(headers)})
    assert ev["ready"].get(timeout=WAIT)["user_id"] == user_id
    ack = sio.call("subscribe", {"symbols": ["sbin", "NIFTY"]}, namespace="/live", timeout=WAIT)
    assert ack == {"ok": True, "symbols": ["NIFTY", "SBIN"], "added": ["SBIN", "NIFTY"]}
    seen = {}
    while set(seen) != {"SBIN", "NIFTY"}:
        msg = ev["quote"].get(timeout=WAIT)
        seen[msg["symbol"]] = msg
    q = seen["SBIN"]
    assert set(q) == {"symbol", "ltp", "bid", "ask", "volume", "cum_volume", "ts", "ts_ms"}
    assert isinstance(q["ltp"], str) and float(q["bid"]) <= float(q["ltp"]) <= float(q["ask"])
    # Unsubscribing stops the flow for that symbol only.
    ack = sio.call("unsubscribe", {"symbols": ["SBIN"]}, namespace="/live", timeout=WAIT)
    assert ack["symbols"] == ["NIFTY"] and ack["removed"] == ["SBIN"]


def test_batch_mode_client_receives_one_quotes_list_per_cycle_for_its_symbols_only(live, trader):
    _feed, connect = live
    token = _token(trader[1])
    batch, bev = connect({"token": token})
    assert bev["ready"].get(timeout=WAIT)["quote_mode"] == "single"  # SOCKETIO_QUOTE_MODE default
    ack = batch.call(
        "subscribe", {"symbols": ["SBIN", "TCS"], "mode": "batch"}, namespace="/live", timeout=WAIT
    )
    assert ack == {"ok": True, "symbols": ["SBIN", "TCS"], "added": ["SBIN", "TCS"], "mode": "batch"}
    # Another connection in single mode makes INFY tick too: it must not reach the batch client.
    single, sev = connect({"token": token})
    single.call("subscribe", {"symbols": ["INFY", "SBIN"]}, namespace="/live", timeout=WAIT)
    _quote_for(sev["quote"], "INFY")
    # Wait for a full cycle (both symbols of the batch client ticking in it).
    while True:
        batch_msg = bev["quotes"].get(timeout=WAIT)
        assert isinstance(batch_msg, list) and {q["symbol"] for q in batch_msg} <= {"SBIN", "TCS"}
        if len(batch_msg) == 2:
            break
    by = {q["symbol"]: q for q in batch_msg}
    assert set(by) == {"SBIN", "TCS"}
    for q in batch_msg:
        assert set(q) == {"symbol", "ltp", "bid", "ask", "volume", "cum_volume", "ts", "ts_ms"}
        assert float(q["bid"]) <= float(q["ltp"]) <= float(q["ask"])
    assert by["SBIN"]["ts_ms"] == by["TCS"]["ts_ms"]  # one cycle, one producer stamp
    # Batch mode: no per-tick `quote` events; single mode: no `quotes` lists.
    assert bev["quote"].empty() and sev["quotes"].empty()
    # Unsubscribing narrows the list; switching back to single mode restores `quote` events.
    batch.call("unsubscribe", {"symbols": ["TCS"]}, namespace="/live", timeout=WAIT)
    after = int(time.time() * 1000)
    while True:
        batch_msg = bev["quotes"].get(timeout=WAIT)
        if batch_msg[0]["ts_ms"] > after:  # a cycle produced after the unsubscribe took effect
            break
    assert [q["symbol"] for q in batch_msg] == ["SBIN"]
    ack = batch.call("subscribe", {"symbols": [], "mode": "single"}, namespace="/live", timeout=WAIT)
    assert ack["mode"] == "single" and ack["symbols"] == ["SBIN"]
    assert _quote_for(bev["quote"], "SBIN")["symbol"] == "SBIN"
    bad = batch.call("subscribe", {"symbols": ["SBIN"], "mode": "bulk"}, namespace="/live", timeout=WAIT)
    assert bad["ok"] is False and bad["code"] == "VALIDATION_ERROR" and bad["field"] == "mode"


def test_batch_fan_out_groups_local_connections_by_symbol_set(app, monkeypatch):
    """Unit level: one emit per distinct ticked-symbol set, subsets in the cycle's order, local only."""
    from backend.realtime import feed as feed_mod

    emits = []
    monkeypatch.setattr(feed_mod.socketio, "emit", lambda *a, **kw: emits.append((a, kw)))
    svc = feed_mod.FeedService(app)
    svc.set_batch("a", {"SBIN", "TCS"})
    svc.set_batch("b", {"TCS", "SBIN"})
    svc.set_batch("c", {"INFY", "NOPE"})
    svc.set_batch("d", {"ITC"})  # did not tick: nothing sent
    svc.set_batch("e", {"WIPRO"})
    svc.set_batch("e", None)  # back to single mode
    quotes = [{"symbol": "TCS", "ltp": "1"}, {"symbol": "INFY", "ltp": "2"}, {"symbol": "SBIN", "ltp": "3"}]
    assert svc.fan_out(quotes) == 2
    sent = sorted((str(kw["to"]), a[1]) for a, kw in emits)
    assert sent == [
        ("['a', 'b']", [{"symbol": "TCS", "ltp": "1"}, {"symbol": "SBIN", "ltp": "3"}]),
        ("c", [{"symbol": "INFY", "ltp": "2"}]),
    ]
    assert all(
        a[0] == "quotes" and kw["ignore_queue"] is True and kw["namespace"] == "/live" for a, kw in emits
    )


def test_api_key_auth_and_private_user_room(live, trader, client):
    from backend.realtime import emit_to_user

    _feed, connect = live
    user_id, headers = trader
    key = client.post(
        "/api/v1/auth/api-keys", json={"name": "ws", "scopes": ["read"]}, headers=headers
    ).get_json()
    sio, ev = connect({"api_key": key["key"]})
    assert ev["ready"].get(timeout=WAIT)["user_id"] == user_id
    emit_to_user(user_id, "notice", {"text": "order filled"})
    emit_to_user(user_id + 999, "notice", {"text": "someone else"})
    assert ev["notice"].get(timeout=WAIT) == {"text": "order filled"}
    with pytest.raises(queue.Empty):
        ev["notice"].get(timeout=0.5)


@pytest.mark.parametrize("auth", [None, {}, {"token": "not-a-jwt"}, {"api_key": "tp_wrong"}])
def test_unauthenticated_connect_is_refused(live, auth):
    _feed, connect = live
    with pytest.raises(socketio.exceptions.ConnectionError):
        connect(auth)


def test_unknown_symbols_and_cap_answer_with_error_events(live, trader, app):
    _feed, connect = live
    sio, ev = connect({"token": _token(trader[1])})
    ack = sio.call("subscribe", {"symbols": ["SBIN", "NOPE"]}, namespace="/live", timeout=WAIT)
    assert ack["ok"] is False and ack["code"] == "UNKNOWN_SYMBOL" and ack["symbols"] == ["NOPE"]
    err = ev["error"].get(timeout=WAIT)
    assert err["code"] == "UNKNOWN_SYMBOL" and err["symbols"] == ["NOPE"]
    app.config["SOCKETIO_MAX_SUBSCRIPTIONS"] = 2
    try:
        assert sio.call("subscribe", ["TCS", "INFY"], namespace="/live", timeout=WAIT)["ok"] is True
        ack = sio.call("subscribe", ["ITC"], namespace="/live", timeout=WAIT)
        assert ack["code"] == "SUBSCRIPTION_LIMIT" and ack["limit"] == 2
        assert ev["error"].get(timeout=WAIT)["code"] == "SUBSCRIPTION_LIMIT"
        bad = sio.call("subscribe", {"symbols": 5}, namespace="/live", timeout=WAIT)
        assert bad["code"] == "VALIDATION_ERROR"
    finally:
        app.config["SOCKETIO_MAX_SUBSCRIPTIONS"] = 100


def test_ticks_reach_bus_subscribers_and_ltp_cache(live, trader, app):
    from backend.realtime.bus import tick_bus
    from backend.services.cache import get_cache

    feed, _connect = live
    got: queue.Queue = queue.Queue()
    tick_bus.subscribe(got.put, symbols=lambda: ["WIPRO"])
    tick = got.get(timeout=WAIT)
    while tick.symbol != "WIPRO":  # other tests' symbols may still be wanted for a few seconds
        tick = got.get(timeout=WAIT)
    assert tick.ltp > 0 and tick.bid <= tick.ltp <= tick.ask
    with app.app_context():
        assert get_cache().get("ltp:WIPRO") is not None


def test_killing_the_producer_brings_a_replacement(live, trader):
    feed, connect = live
    sio, ev = connect({"token": _token(trader[1])})
    sio.call("subscribe", ["TCS"], namespace="/live", timeout=WAIT)
    first = _quote_for(ev["quote"], "TCS")
    gen = feed.kill_producer()
    # Wait for the watchdog's replacement, then for a quote produced by it.
    deadline_q: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: deadline_q.put(_wait_generation(feed, gen)), daemon=True).start()
    assert deadline_q.get(timeout=WAIT) is True
    assert feed.restarts >= 1
    later = _quote_for(ev["quote"], "TCS", after_ms=first["ts_ms"])
    assert later["ts_ms"] > first["ts_ms"]


def _wait_generation(feed, gen) -> bool:
    import time

    while feed.generation <= gen:
        time.sleep(0.05)
    return True


def test_a_dead_leader_is_replaced_by_another_contender(live, trader, app):
    """A second feed service (as another worker would run) takes over once the leader dies."""
    import time

    from backend.realtime.feed import FeedService

    leader, connect = live
    sio, ev = connect({"token": _token(trader[1])})
    sio.call("subscribe", ["HCLTECH"], namespace="/live", timeout=WAIT)
    _quote_for(ev["quote"], "HCLTECH")
    assert leader.is_leader
    standby = FeedService(app)
    standby.start()
    try:
        # The leader "process" dies: its supervisor and producer stop without releasing the lease.
        leader.running = False
        leader.kill_producer()
        # The worker serving this client is alive and keeps publishing the client's interest.
        standby.add_interest("client-on-standby", ["HCLTECH"])
        t0 = time.monotonic()
        while not standby.is_leader and time.monotonic() - t0 < WAIT:
            time.sleep(0.05)
        assert standby.is_leader
        after = int(time.time() * 1000)
        assert _quote_for(ev["quote"], "HCLTECH", after_ms=after)["symbol"] == "HCLTECH"
    finally:
        standby.stop()


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="the message queue needs TEST_REDIS_URL")
def test_emit_from_another_process_through_redis_reaches_the_client(live, trader):
    _feed, connect = live
    user_id, headers = trader
    sio, ev = connect({"token": _token(headers)})
    ev["ready"].get(timeout=WAIT)
    code = (
        "import sys; from flask_socketio import SocketIO; "
        "SocketIO(message_queue=sys.argv[1]).emit('notice', {'from': 'worker'}, "
        "to='user:' + sys.argv[2], namespace='/live')"
    )
    subprocess.run(
        [sys.executable, "-c", code, os.environ["TEST_REDIS_URL"], str(user_id)],
        check=True,
        cwd=ROOT,
        timeout=60,
    )
    assert ev["notice"].get(timeout=WAIT) == {"from": "worker"}


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="the message queue needs TEST_REDIS_URL")
def test_a_batch_from_another_process_reaches_the_client_as_separate_events_in_order(live, trader):
    _feed, connect = live
    user_id, headers = trader
    sio, ev = connect({"token": _token(headers)})
    ev["ready"].get(timeout=WAIT)
    code = (
        "import sys; from flask_socketio import SocketIO; "
        "from backend.realtime.pubsub import BatchingRedisManager; "
        "m = BatchingRedisManager(sys.argv[1], channel='flask-socketio', write_only=True); "
        "s = SocketIO(message_queue=sys.argv[1], client_manager=m)\n"
        "with m.batch():\n"
        "    for n in (1, 2, 3): s.emit('notice', {'n': n}, to='user:' + sys.argv[2], namespace='/live')"
    )
    subprocess.run(
        [sys.executable, "-c", code, os.environ["TEST_REDIS_URL"], str(user_id)],
        check=True,
        cwd=ROOT,
        timeout=60,
    )
    assert [ev["notice"].get(timeout=WAIT) for _ in range(3)] == [{"n": 1}, {"n": 2}, {"n": 3}]
