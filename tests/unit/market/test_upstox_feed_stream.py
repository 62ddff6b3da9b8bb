"""The Upstox V3 market-data websocket against a local stub speaking the real protobuf frames.

Threads and loopback ports only; short configured timeouts. ``wait_for`` polls a condition with an
upper bound (it never asserts on elapsed time)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from backend.domain.market.instruments import InstrumentRegistry, seed_instruments
from backend.domain.market.upstox_feed import FeedLimitExceeded, UpstoxMarketStream
from backend.domain.market.upstox_feed import MarketDataFeedV3_pb2 as pb
from backend.domain.market.upstox_feed.fallback import FeedRouter
from backend.domain.market.upstox_provider import UpstoxProvider
from backend.realtime.bus import TickBus
from tests.stubs.upstox_ws_stub import FeedStub, StubQuote, feed_for, response

REG = InstrumentRegistry(seed_instruments())
SYMS = ["RELIANCE", "TCS", "INFY"]
KEY = {s: REG.by_symbol(s).instrument_key for s in SYMS + ["NIFTY"]}


def wait_for(cond, timeout=5.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


class Collector:
    def __init__(self, bus):
        self.ticks = []
        self.lock = threading.Lock()
        bus.subscribe(self, name="collector")

    def __call__(self, tick):
        with self.lock:
            self.ticks.append(tick)

    def of(self, symbol, **match):
        with self.lock:
            return [
                t
                for t in self.ticks
                if t.symbol == symbol and all(getattr(t, k) == v for k, v in match.items())
            ]


class Token:
    def __init__(self, value):
        self.value = value

    def __call__(self):
        return self.value


@pytest.fixture
def feed():
    stub = FeedStub(access_token="tok-1")
    for i, s in enumerate(SYMS + ["NIFTY"]):
        stub.quotes[KEY[s]] = StubQuote(ltp=1000.0 + i, cp=990.0, bid=999.95 + i, ask=1000.05 + i, vtt=100)
    yield stub
    stub.close()


@pytest.fixture
def bus():
    return TickBus()


def make_stream(stub, bus, token=None, **kw):
    kw.setdefault("stall_timeout", 5.0)  # quiet stub: only the stall test shortens it
    kw.setdefault("backoff_initial", 0.02)
    kw.setdefault("backoff_max", 0.1)
    kw.setdefault("token_check_seconds", 0.05)
    s = UpstoxMarketStream(
        token_provider=token or Token("tok-1"),
        instruments=REG,
        sink=bus.publish,
        base_url=stub.base_url,
        **kw,
    )
    return s


@pytest.fixture
def streams():
    made = []
    yield made
    for s in made:
        s.stop()


@pytest.mark.parametrize("mode", ["ltpc", "full", "option_greeks"])
def test_ticks_reach_the_tick_bus_decoded_in_each_mode(feed, bus, streams, mode):
    got = Collector(bus)
    s = make_stream(feed, bus, mode=mode)
    streams.append(s)
    s.want(["RELIANCE", "TCS"])
    s.start()
    wait_for(lambda: got.of("RELIANCE") and got.of("TCS"), what="initial snapshot")
    assert feed.subscribed() == {KEY["RELIANCE"]: mode, KEY["TCS"]: mode}
    assert feed.authorize_calls == ["tok-1"]
    feed.push(KEY["RELIANCE"], ltp=1012.35, bid=1012.3, ask=1012.4, vtt=160, ltt=1_763_616_700_000)
    wait_for(lambda: got.of("RELIANCE", ltp=Decimal("1012.35")), what="live tick")
    t = got.of("RELIANCE", ltp=Decimal("1012.35"))[0]
    assert t.extra["frame"] == "live_feed" and t.extra["mode"] == mode
    assert t.ts == datetime.fromtimestamp(1_763_616_700, UTC)
    if mode == "ltpc":
        assert t.bid == t.ask == Decimal("1012.35") and t.cum_volume == 0
    else:
        assert (t.bid, t.ask) == (Decimal("1012.3"), Decimal("1012.4"))
        assert t.cum_volume == 160 and t.volume == 60  # vtt 100 -> 160
    assert s.status()["segment_status"]["NSE_EQ"] == "NORMAL_OPEN"  # market_info frame
    assert s.streamed(SYMS) == {"RELIANCE", "TCS"}


def test_subscription_changes_are_sent_on_the_open_socket(feed, bus, streams):
    s = make_stream(feed, bus)
    streams.append(s)
    s.want(["RELIANCE", "TCS"])
    s.start()
    wait_for(lambda: len(feed.subscribed()) == 2)
    s.set_wanted({"ltpc": ["RELIANCE"], "full": ["INFY"]})
    wait_for(lambda: feed.subscribed() == {KEY["RELIANCE"]: "ltpc", KEY["INFY"]: "full"}, what="resubscribe")
    methods = [r["method"] for r in feed.requests]
    assert methods[-2:] == ["unsub", "sub"] and feed.connections == 1


def test_stall_watchdog_rest_fallback_and_back(feed, bus, streams, upstox_stub, request):
    rest_base, rest = upstox_stub
    for i, sym in enumerate(SYMS):
        rest.add(KEY[sym], sym, ltp=2000.0 + i, prev_close=1990.0, volume=5000)
    rest.access_token = "tok-1"
    provider = UpstoxProvider(token_provider=Token("tok-1"), instruments=REG, base_url=rest_base)
    got = Collector(bus)
    s = make_stream(feed, bus, stall_timeout=0.3)
    streams.append(s)
    router = FeedRouter(s, provider.tick)
    now = datetime.now(UTC)
    assert len(router.cycle(SYMS, now)) == 3 and router.source == "rest"  # socket not up yet: REST
    live = threading.Event()

    def market():  # a live session: every symbol trades every 50 ms (a stalled socket gets none)
        price = 1000.0
        while not live.wait(0.05):
            price += 0.05
            for sym in SYMS:
                feed.push(KEY[sym], ltp=round(price, 2))

    pusher = threading.Thread(target=market, daemon=True)
    pusher.start()
    request.addfinalizer(live.set)
    s.start()
    wait_for(lambda: s.streamed(SYMS) == set(SYMS), what="socket streaming")
    polls = len(rest.calls("/v2/market-quote/quotes"))
    assert router.cycle(SYMS, now) == [] and router.source == "socket"
    assert len(rest.calls("/v2/market-quote/quotes")) == polls  # no REST while the socket streams

    feed.stall()  # socket open, silent
    wait_for(lambda: not s.healthy(), what="watchdog verdict")
    ticks = router.cycle(SYMS, now)
    assert router.source == "rest" and {t.symbol for t in ticks} == set(SYMS)
    assert {t.symbol: t.ltp for t in ticks}["RELIANCE"] == Decimal("2000")  # from the REST stub
    assert len(rest.calls("/v2/market-quote/quotes")) == polls + 1

    # the watchdog closes the silent socket; the reconnect re-subscribes and the socket takes over
    wait_for(lambda: s.reconnects.get("stalled", 0) >= 1 and s.streamed(SYMS) == set(SYMS), what="recovery")
    assert feed.connections >= 2 and set(feed.subscribed()) == {KEY[x] for x in SYMS}
    assert router.cycle(SYMS, now) == [] and router.source == "socket"
    assert router.switches == 3  # rest -> socket -> rest -> socket
    seen = len(got.of("INFY"))
    wait_for(lambda: len(got.of("INFY")) > seen + 2, what="ticks after recovery")


def test_disconnect_reconnects_and_resubscribes(feed, bus, streams):
    got = Collector(bus)
    s = make_stream(feed, bus, mode="full")
    streams.append(s)
    s.want(["RELIANCE", "NIFTY"])
    s.start()
    wait_for(lambda: len(feed.subscribed()) == 2)
    feed.disconnect_all()
    wait_for(lambda: feed.connections == 2 and len(feed.subscribed()) == 2, what="reconnect + resubscribe")
    assert feed.subscribed() == {KEY["RELIANCE"]: "full", KEY["NIFTY"]: "full"}
    assert sum(s.reconnects.get(r, 0) for r in ("closed", "disconnected")) == 1
    assert len(feed.authorize_calls) == 2  # the redirect URI is single-use: authorize again
    feed.push(KEY["NIFTY"], ltp=24600.5)
    wait_for(lambda: got.of("NIFTY", ltp=Decimal("24600.5")), what="tick on the new socket")


def test_token_rollover_reauthorizes_with_the_new_token_and_resubscribes(feed, bus, streams):
    got = Collector(bus)
    token = Token("tok-1")
    s = make_stream(feed, bus, token=token)
    streams.append(s)
    s.want(["TCS"])
    s.start()
    wait_for(lambda: s.streamed(["TCS"]))
    feed.expire_token("tok-2")  # 03:30 IST: old token dead, socket dropped
    wait_for(lambda: s.state == "token_expired", what="401 on re-authorize")
    assert feed.authorize_calls[-1] == "tok-1" and s.streamed() == set()
    calls = len(feed.authorize_calls)
    time.sleep(0.2)  # parked: the rejected token is not retried in a loop
    assert len(feed.authorize_calls) == calls
    token.value = "tok-2"  # the user logs in again: the token store holds a new token
    wait_for(lambda: s.streamed(["TCS"]), what="stream with the new token")
    assert feed.authorize_calls[-1] == "tok-2" and feed.subscribed() == {KEY["TCS"]: "ltpc"}
    feed.push(KEY["TCS"], ltp=3333.3)
    wait_for(lambda: got.of("TCS", ltp=Decimal("3333.3")))


def test_fresh_login_while_connected_switches_to_the_new_token(feed, bus, streams):
    token = Token("tok-1")
    s = make_stream(feed, bus, token=token)
    streams.append(s)
    s.want(["TCS"])
    s.start()
    wait_for(lambda: s.streamed(["TCS"]))
    feed.access_token = "tok-9"  # Upstox issued a new token at login; the old socket still runs
    token.value = "tok-9"
    wait_for(lambda: s.reconnects.get("token_changed") == 1 and s.streamed(["TCS"]), what="switch")
    assert feed.authorize_calls == ["tok-1", "tok-9"] and feed.connections == 2


def test_malformed_frames_and_unknown_keys_are_counted_and_the_feed_continues(feed, bus, streams):
    got = Collector(bus)
    s = make_stream(feed, bus)
    streams.append(s)
    s.want(["RELIANCE"])
    s.start()
    wait_for(lambda: s.streamed(["RELIANCE"]))
    before = REGISTRY.get_sample_value("upstox_feed_bad_input_total", {"reason": "malformed"}) or 0
    unknown_before = REGISTRY.get_sample_value("upstox_feed_bad_input_total", {"reason": "unknown_key"}) or 0
    feed.send_raw(b"\xff\xff\xff\xff")
    feed.send_raw("a text frame")
    key = KEY["RELIANCE"]
    mixed = {
        key: feed_for(key, "ltpc", StubQuote(ltp=1500.0)),
        "NSE_EQ|UNKNOWN1": feed_for("x", "ltpc", StubQuote(ltp=1.0)),
    }
    feed.send_raw(response(pb.live_feed, mixed))
    wait_for(lambda: got.of("RELIANCE", ltp=Decimal("1500")), what="tick after bad frames")
    assert s.malformed == 2 and s.unknown_keys == 1
    assert REGISTRY.get_sample_value("upstox_feed_bad_input_total", {"reason": "malformed"}) == before + 1
    assert (
        REGISTRY.get_sample_value("upstox_feed_bad_input_total", {"reason": "unknown_key"})
        == unknown_before + 1
    )
    assert feed.connections == 1 and s.reconnects == {}  # never dropped the socket
    feed.push(key, ltp=1501.0)
    wait_for(lambda: got.of("RELIANCE", ltp=Decimal("1501")))


def test_a_failing_subscriber_does_not_stop_the_socket(feed, bus, streams):
    bus.subscribe(lambda t: 1 / 0, name="broken")
    got = Collector(bus)
    s = make_stream(feed, bus)
    streams.append(s)
    s.want(["INFY"])
    s.start()
    feed_ok = wait_for(lambda: got.of("INFY"))
    assert feed_ok is None and bus.errors >= 1 and s.connections == 1


def test_key_limit_is_enforced_before_anything_is_sent(feed, bus, streams):
    many = [f"SYM{i}" for i in range(2001)]
    from backend.domain.market.instruments import Instrument

    reg = InstrumentRegistry(
        [Instrument(f"NSE_EQ|X{i}", s, s, "NSE", "NSE_EQ", "EQ") for i, s in enumerate(many)]
    )
    s = UpstoxMarketStream(
        token_provider=Token("tok-1"), instruments=reg, sink=bus.publish, base_url=feed.base_url, mode="full"
    )
    s.want(many[:2000])
    with pytest.raises(FeedLimitExceeded) as err:
        s.want(many)
    assert err.value.details["limit"] == 2000 and err.value.details["mode"] == "full"
    assert len(s.wanted_keys()["full"]) == 2000  # unchanged by the refused call
    # the feed router keeps the first 2000 on the socket and polls the surplus over REST
    polled = []
    router = FeedRouter(s, lambda syms, now: polled.append(syms) or [])
    router.cycle(many, datetime.now(UTC))
    assert router.over_limit == ["SYM2000"] and polled == [many]  # not streaming yet: all on REST
    assert len(s.wanted_keys()["full"]) == 2000


def test_no_token_in_the_store_parks_the_stream(feed, bus, streams):
    from backend.domain.errors import BrokerTokenExpired

    def none():
        raise BrokerTokenExpired("no Upstox session")

    s = make_stream(feed, bus, token=none)
    streams.append(s)
    s.want(["TCS"])
    s.start()
    wait_for(lambda: s.state == "no_token")
    assert feed.authorize_calls == [] and not s.healthy()


def test_outside_the_session_a_quiet_socket_is_pinged_not_dropped(feed, bus, streams):
    s = make_stream(feed, bus, stall_timeout=0.2, expect_data=lambda: False)  # market closed
    streams.append(s)
    s.want(["TCS"])
    s.start()
    wait_for(lambda: s.streamed(["TCS"]))
    feed.stall()  # no data at all, as after the close; the stub still answers pings
    time.sleep(1.0)  # five stall timeouts of silence
    assert s.reconnects == {} and s.healthy() and feed.connections == 1


def test_an_unreadable_token_store_never_kills_the_stream_thread(feed, bus, streams):
    state = {"fail": True}

    def flaky():
        if state["fail"]:
            raise RuntimeError("database is down")
        return "tok-1"

    s = make_stream(feed, bus, token=flaky)
    streams.append(s)
    s.want(["TCS"])
    s.start()
    wait_for(lambda: s.state == "no_token" and "database is down" in (s.last_error or ""))
    state["fail"] = False
    wait_for(lambda: s.streamed(["TCS"]), what="stream once the store answers")
    state["fail"] = True  # failing again while connected: the socket stays
    time.sleep(0.2)
    assert s.connections == 1 and s.healthy()
