"""The portfolio feed's parsing and socket supervision against the local websocket stub (no app)."""

from __future__ import annotations

import json
import random
import time

import pytest

from backend.domain.broker.upstox_portfolio_feed import (
    FeedSettings,
    MalformedMessage,
    PortfolioFeed,
    parse_update,
)
from backend.domain.errors import BrokerTokenExpired
from backend.domain.ws_supervisor import Backoff
from tests.stubs.upstox_portfolio_ws_stub import PortfolioSocketServer

ORDER = {
    "update_type": "order",
    "order_id": "240221025997024",
    "status": "complete",
    "quantity": 2,
    "filled_quantity": 2,
    "average_price": 990.5,
    "instrument_key": "NSE_EQ|INE002A01018",
    "tag": "k-1",
}


def wait_for(cond, timeout: float = 10.0) -> None:
    """Bounded wait for a condition the feed thread brings about (not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cond()


# --------------------------------------------------------------------------- parsing


def test_order_update_is_parsed_and_instrument_key_mapped():
    got = parse_update(json.dumps(ORDER).encode())
    assert got.kind == "order" and got.payload["instrument_token"] == "NSE_EQ|INE002A01018"
    assert got.payload["filled_quantity"] == 2


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe",  # not UTF-8
        "{not json",
        "[1, 2]",
        json.dumps({"status": "open"}),  # no update_type, no order id
        json.dumps({**ORDER, "order_id": ""}),
        json.dumps({**ORDER, "order_id": None}),
        json.dumps({**ORDER, "status": 7}),
        json.dumps({**ORDER, "filled_quantity": "2"}),
        json.dumps({**ORDER, "quantity": True}),
        json.dumps({**ORDER, "average_price": {"x": 1}}),
    ],
)
def test_malformed_messages_raise(raw):
    with pytest.raises(MalformedMessage):
        parse_update(raw)


def test_unknown_update_type_is_other_not_an_error():
    assert parse_update(json.dumps({"update_type": "margin_call", "x": 1})).kind == "other"
    assert parse_update(json.dumps({**ORDER, "update_type": "position"})).kind == "position"


def test_backoff_grows_to_its_cap_and_resets():
    b = Backoff(initial=1.0, maximum=8.0, factor=2.0, jitter=0.0, rng=random.Random(1))
    assert [b.next_delay() for _ in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    b.reset()
    assert b.next_delay() == 1.0
    j = Backoff(initial=10.0, jitter=0.2, rng=random.Random(7))
    first = j.next_delay()
    assert 8.0 <= first <= 12.0 and first != 10.0  # jittered around the base


# --------------------------------------------------------------------------- supervision


FAST = FeedSettings(
    silence_timeout=0.6,
    ping_interval=0.1,
    credential_check_seconds=0.05,
    auth_retry_seconds=0.3,
    backoff_initial=0.02,
    backoff_max=0.1,
    connect_timeout=2.0,
)


@pytest.fixture
def server():
    s = PortfolioSocketServer()
    yield s
    s.shutdown()


class Harness:
    """A feed whose authorize hands out the stub's one-time URIs while ``token`` is valid."""

    def __init__(self, server: PortfolioSocketServer, settings: FeedSettings = FAST) -> None:
        self.server = server
        self.token: str | None = "t1"
        self.valid = {"t1"}
        self.updates: list = []
        self.authorized: list[str | None] = []
        self.feed = PortfolioFeed(
            name="test",
            authorize=self.authorize,
            on_update=self.updates.append,
            credential=lambda: self.token,
            is_auth_error=lambda exc: isinstance(exc, BrokerTokenExpired),
            settings=settings,
        )

    def authorize(self) -> str:
        self.authorized.append(self.token)
        if self.token not in self.valid:
            raise BrokerTokenExpired("Invalid token used to access API")
        return self.server.issue_uri()


@pytest.fixture
def harness(server):
    h = Harness(server)
    h.feed.start()
    wait_for(lambda: server.open_count() == 1)
    yield h
    h.feed.stop()


def test_messages_reach_the_handler_and_malformed_ones_are_counted(harness, server):
    server.push(ORDER)
    server.push("{garbage")
    server.push({"update_type": "gtt_order", "gtt_order_id": "GTT-1"})
    server.push({**ORDER, "order_id": "2", "status": "open"})
    wait_for(lambda: len(harness.updates) == 2)
    assert [u.payload["order_id"] for u in harness.updates] == [ORDER["order_id"], "2"]
    stats = harness.feed.stats
    assert stats.malformed == 1 and stats.messages == 4 and harness.feed.ignored == 1
    assert stats.connects == 1 and harness.feed.supervisor.running  # the feed kept going


def test_a_handler_error_is_counted_and_the_feed_goes_on(server):
    h = Harness(server)
    calls = []

    def boom(update):
        calls.append(update)
        if len(calls) == 1:
            raise RuntimeError("database down")

    h.feed.on_update = boom
    h.feed.start()
    try:
        wait_for(lambda: server.open_count() == 1)
        server.push(ORDER)
        server.push({**ORDER, "order_id": "2"})
        wait_for(lambda: len(calls) == 2)
        assert h.feed.stats.handler_errors == 1 and h.feed.stats.reconnects == 0
    finally:
        h.feed.stop()


def test_disconnect_reconnects_with_a_fresh_authorization(harness, server):
    server.drop_all()
    wait_for(lambda: harness.feed.stats.reconnects == 1 and server.open_count() == 1)
    assert harness.feed.stats.authorizations == 2 and len(server.codes_used) == 2
    assert len(set(server.codes_used)) == 2  # each connection used its own one-time URI
    server.push(ORDER)
    wait_for(lambda: len(harness.updates) == 1)


def test_a_silent_socket_is_closed_by_the_watchdog_and_reopened(harness, server):
    server.stalled = True  # no frames, no pongs
    wait_for(lambda: harness.feed.stats.stalls >= 1)
    server.stalled = False
    wait_for(lambda: harness.feed.stats.reconnects >= 1 and server.open_count() == 1)
    server.push(ORDER)
    wait_for(lambda: len(harness.updates) == 1)


def test_a_quiet_but_alive_socket_is_not_a_stall(server):
    # pings are answered: well past the silence timeout with no data, the socket stays up
    from dataclasses import replace

    h = Harness(server, replace(FAST, silence_timeout=2.0))  # roomy: the machine is shared
    h.feed.start()
    try:
        wait_for(lambda: h.feed.stats.last_frame_at is not None)
        time.sleep(4.0)
        assert h.feed.stats.stalls == 0 and h.feed.stats.connects == 1
    finally:
        h.feed.stop()


def test_token_rollover_waits_for_a_fresh_login_then_reauthorizes(harness, server):
    # 03:30 IST: the token expires (the store stops returning it) and Upstox ends the session
    harness.token = None
    server.close_all()
    wait_for(lambda: harness.feed.stats.state == "auth_wait")
    assert harness.feed.stats.auth_failures >= 1 and server.open_count() == 0
    # a fresh login stores a new token: the feed re-authorizes with it on its own
    harness.valid.add("t2")
    harness.token = "t2"
    wait_for(lambda: server.open_count() == 1)
    assert harness.authorized[-1] == "t2"
    server.push(ORDER)
    wait_for(lambda: len(harness.updates) == 1)


def test_a_fresh_login_while_connected_reauthorizes_at_once(harness, server):
    harness.valid.add("t2")
    harness.token = "t2"
    wait_for(lambda: harness.feed.stats.reauthorizations == 1 and server.open_count() == 1)
    assert harness.authorized == ["t1", "t2"] and harness.feed.stats.disconnects == 0


def test_update_types_are_validated_and_parsed():
    from config.env import ConfigError
    from config.settings_broker import settings

    assert settings({})["UPSTOX_PORTFOLIO_UPDATE_TYPES"] == ["order", "position", "holding"]
    got = settings({"UPSTOX_PORTFOLIO_UPDATE_TYPES": "order, gtt_order"})
    assert FeedSettings.from_config(got).update_types == ("order", "gtt_order")
    for bad in ("order,trades", "position,holding"):
        with pytest.raises(ConfigError, match="UPSTOX_PORTFOLIO_UPDATE_TYPES"):
            settings({"UPSTOX_PORTFOLIO_UPDATE_TYPES": bad})
