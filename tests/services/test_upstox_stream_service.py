"""The Upstox websocket inside the live feed, end to end against the REST and websocket stubs.

The token comes from the token store (the connection an admin designated for the shared feed);
socket ticks reach the tick bus and the LTP cache; REST polls only until the socket streams; a
fresh login (a new token in the store) re-authorizes and re-subscribes; a stall goes back to REST."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from decimal import Decimal

import pytest

from backend.domain.market.calendar import IST
from backend.realtime.bus import tick_bus
from tests.api.test_broker import TOKEN, connect, upstox  # noqa: F401 - the stub fixture
from tests.stubs.upstox_ws_stub import FeedStub, StubQuote

KEYS = {"RELIANCE": "NSE_EQ|INE002A01018", "TCS": "NSE_EQ|INE467B01029"}


def wait_for(cond, timeout=8.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def feed_stub():
    stub = FeedStub(access_token=TOKEN)
    stub.quotes[KEYS["RELIANCE"]] = StubQuote(ltp=1401.5, cp=1390.0, bid=1401.45, ask=1401.55, vtt=10)
    stub.quotes[KEYS["TCS"]] = StubQuote(ltp=3451.0, cp=3440.0, bid=3450.95, ask=3451.05, vtt=10)
    yield stub
    stub.close()


@pytest.fixture
def upstox_feed(app, upstox, feed_stub):  # noqa: F811 - pytest fixture injection
    from backend.services import market_data as md

    overrides = {
        "MARKET_DATA_PROVIDER": "upstox",
        "UPSTOX_BASE_URL": app.config["UPSTOX_API_BASE_URL"],
        "UPSTOX_FEED_BASE_URL": feed_stub.base_url,
        "UPSTOX_FEED_ENABLED": True,
        "UPSTOX_FEED_MODE": "full",
        "UPSTOX_FEED_STALL_SECONDS": 0.5,
        "UPSTOX_FEED_BACKOFF_INITIAL_SECONDS": 0.02,
        "UPSTOX_FEED_BACKOFF_MAX_SECONDS": 0.1,
        "UPSTOX_FEED_TOKEN_CHECK_SECONDS": 0.05,
        "UPSTOX_ACCESS_TOKEN": None,
    }
    saved = {k: app.config.get(k) for k in overrides}
    app.config.update(overrides)
    md.set_provider(None, app)
    from backend.realtime.feed import FeedService

    feed = FeedService(app)
    feed.always = {"RELIANCE", "TCS"}
    try:
        yield feed
    finally:
        feed.stop()
        app.config.update(saved)
        md.set_provider(None, app)


def designate(client, make_user, conn_id):
    _, admin_headers = make_user("admin")
    r = client.put(
        "/api/v1/broker/market-data-connection", json={"connection_id": conn_id}, headers=admin_headers
    )
    assert r.status_code == 200, r.get_json()


def test_socket_ticks_from_the_token_store_reach_the_tick_bus_rest_only_as_fallback(
    app,
    client,
    trader,
    make_user,
    upstox,  # noqa: F811 - the imported fixture
    feed_stub,
    upstox_feed,
    market_clock,
):
    from backend.services import market_data as md

    # in session (Thursday 20 Nov 2025, 11:00 IST): the watchdog expects data
    market_clock(datetime(2025, 11, 20, 11, 0, tzinfo=IST))

    _, headers = trader
    _, _, cb = connect(client, headers, upstox)
    designate(client, make_user, cb.get_json()["id"])
    got, lock = [], threading.Lock()

    def collect(t):
        with lock:
            got.append(t)

    sub = tick_bus.subscribe(collect, name="test-collector")
    live = threading.Event()

    def market():  # the session trades: a tick per symbol every 50 ms
        n = 0
        while not live.wait(0.05):
            n += 1
            feed_stub.push(KEYS["RELIANCE"], ltp=1401.5 + n * 0.05, vtt=10 + n)
            feed_stub.push(KEYS["TCS"], ltp=3451.0 + n * 0.05, vtt=10 + n)

    threading.Thread(target=market, daemon=True).start()
    try:
        with app.app_context():
            upstox_feed._cycle(md)  # first cycle: the socket is not up yet, REST polls both
        router = upstox_feed.router
        assert router is not None and router.source == "rest"
        assert {t.symbol for t in got if t.ltp in (Decimal("1400"), Decimal("3450"))} == {"RELIANCE", "TCS"}
        wait_for(lambda: feed_stub.authorize_calls, what="authorize")
        assert feed_stub.authorize_calls[0] == TOKEN  # the designated connection's token
        wait_for(lambda: router.stream.streamed() == {"RELIANCE", "TCS"}, what="socket streaming")
        polls = len(upstox.calls("/v2/market-quote/quotes"))
        with app.app_context():
            upstox_feed._cycle(md)
        assert router.source == "socket" and len(upstox.calls("/v2/market-quote/quotes")) == polls
        wait_for(lambda: any(t.extra.get("frame") == "live_feed" for t in got), what="socket tick on the bus")
        with lock:
            last = [t for t in got if t.symbol == "RELIANCE" and t.extra.get("mode") == "full"][-1]
        # best bid/ask and 5 levels from the socket's depth (REST would give ltp -/+ 0.05 of 1400)
        assert (last.bid, last.ask) == (Decimal("1401.45"), Decimal("1401.55")) and len(
            last.extra["depth"]
        ) == 5
        with app.app_context():
            cached = md.ltp(["RELIANCE"])["RELIANCE"]
        assert cached > Decimal("1400")  # the LTP cache follows the socket, not the REST stub
        from backend.api.admin.schemas import FeedStatusSchema

        shown = FeedStatusSchema().dump(upstox_feed.status())  # GET /api/v1/admin/ops/feed
        assert shown["source"] == "socket" and shown["stream"]["connected"] is True
        assert shown["stream"]["segment_status"]["NSE_EQ"] == "NORMAL_OPEN"

        # a fresh login: a new token lands in the store; the socket re-authorizes and re-subscribes
        new_token = "upstox-second-login-token"
        feed_stub.access_token = new_token
        _, _, cb2 = connect(client, headers, upstox, code="code-2", token=new_token)
        assert cb2.status_code == 200
        wait_for(lambda: feed_stub.authorize_calls[-1] == new_token, what="re-authorize with the new token")
        wait_for(lambda: router.stream.streamed() == {"RELIANCE", "TCS"}, what="re-subscribed")
        assert router.stream.reconnects.get("token_changed") == 1
        assert set(feed_stub.subscribed()) == set(KEYS.values())

        # the socket stalls: this cycle polls REST, and the socket takes over again after the reconnect
        feed_stub.stall()
        wait_for(lambda: not router.stream.healthy(), what="watchdog")
        polls = len(upstox.calls("/v2/market-quote/quotes"))
        with app.app_context():
            upstox_feed._cycle(md)
        assert router.source == "rest" and len(upstox.calls("/v2/market-quote/quotes")) == polls + 1
        wait_for(lambda: router.stream.streamed() == {"RELIANCE", "TCS"}, what="recovered")
        with app.app_context():
            upstox_feed._cycle(md)
        assert router.source == "socket"
    finally:
        live.set()
        tick_bus.unsubscribe(sub)
