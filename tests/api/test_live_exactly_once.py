"""Exactly-once live orders against the local Upstox stub, seen from two app instances on one database.

The row and its key are committed in ``submitting`` before Upstox is called; a timeout leaves it
``unknown``; a retry (on any instance) looks the tag up in the order book through a grace period, and
only a confirmed absence allows one resend.
"""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from backend.domain.market.calendar import IST
from tests.api import test_broker
from tests.api.test_broker import connect
from tests.conftest import app_config
from tests.services import trading_support
from tests.stubs.upstox_orders_stub import book_of

upstox = test_broker.upstox  # shared fixture (the stub on an ephemeral port)
market = trading_support.market  # shared fixture (quotes for the risk checks)


@pytest.fixture(autouse=True)
def _in_session(market_clock):
    # a live account trades by the exchange's calendar whatever MARKET_CLOCK says: pin a session time
    market_clock(datetime(2026, 12, 3, 11, 0, tzinfo=IST), clock="always_open")


events = trading_support.events

FAST = {
    "UPSTOX_READ_TIMEOUT_SECONDS": 0.3,
    "UPSTOX_ORDER_LOOKUP_GRACE_SECONDS": 0.3,
    "UPSTOX_ORDER_LOOKUP_INTERVAL_SECONDS": 0.05,
}


@pytest.fixture(scope="module")
def _second_app(app):
    from backend import create_app

    # the same secrets as the first instance, as two workers of one deployment have
    shared = {
        k: app.config[k] for k in ("SECRET_KEY", "JWT_SECRET_KEY", "TOKEN_ENCRYPTION_KEYS") if k in app.config
    }
    from backend import ops

    saved = dict(ops.READINESS_CHECKS)
    second = create_app(app_config(**shared))
    # readiness checks are process-wide: keep the first app's (a second app in one process is a test's
    # doing; real workers are separate processes)
    ops.READINESS_CHECKS.clear()
    ops.READINESS_CHECKS.update(saved)
    return second


@pytest.fixture
def second(app, _second_app, upstox, market):
    """A second app instance (another worker or machine): same database, its own process memory."""
    from backend.services import broker as svc
    from backend.services import market_data

    keys = [k for k in app.config if k.startswith("UPSTOX_")]
    saved = {k: _second_app.config.get(k) for k in keys}
    _second_app.config.update({k: app.config[k] for k in keys})
    svc.reset_runtime(_second_app)
    from backend.services.trading import common

    market_data.set_provider(market, _second_app)
    _second_app.extensions["market_clock"] = app.extensions.get("market_clock")
    emitter = common.set_emitter(_second_app, None)
    common.set_emitter(_second_app, emitter)
    try:
        yield _second_app
    finally:
        common.set_emitter(_second_app, emitter)
        _second_app.config.update(saved)
        svc.reset_runtime(_second_app)
        market_data.set_provider(None, _second_app)


def _configure(apps, **cfg) -> None:
    from backend.services import broker as svc

    for a in apps:
        a.config.update(cfg)
        svc.reset_runtime(a)


def _live_account(client, headers, state) -> int:
    _, _, cb = connect(client, headers, state)
    assert cb.status_code == 200, cb.get_json()
    return cb.get_json()["account_id"]


def _body(account_id: int, key: str) -> dict:
    return {"account_id": account_id, "symbol": "RELIANCE", "side": "BUY", "type": "LIMIT", "product": "D",
            "quantity": 2, "price": "990.00", "client_order_id": key}  # fmt: skip


def _places(state) -> int:
    return len(state.calls("/v3/order/place"))


def test_timeout_after_acceptance_seen_from_two_instances_is_one_order(
    app,
    client,
    trader,
    upstox,
    second,
    events,
):
    _, headers = trader
    account_id = _live_account(client, headers, upstox)
    _configure((app, second), **FAST)
    from backend.services.trading import common

    common.set_emitter(second, lambda uid, ev, payload: events.append((uid, ev, payload)))
    book = book_of(upstox)
    book.hang_next_place = 1  # Upstox accepts, the answer never arrives in time
    book.book_delay = 1.0  # ... and the order reaches the book later than the first look-up
    try:
        r1 = client.post("/api/v1/orders", json=_body(account_id, "k-123"), headers=headers)
        assert r1.status_code == 503, r1.get_json()
        details = r1.get_json()["error"]["details"]
        assert details["outcome"] == "unknown" and details["status"] == "unknown"
        # the user sees the state: the row survived, nothing rolled it back
        seen = client.get(f"/api/v1/orders/{details['order_id']}", headers=headers).get_json()
        assert seen["status"] == "unknown" and seen["client_order_id"] == "k-123"
        time.sleep(1.0)
        # the retry lands on the other instance, which has no memory of the first attempt
        r2 = second.test_client().post("/api/v1/orders", json=_body(account_id, "k-123"), headers=headers)
        assert r2.status_code == 201, r2.get_json()
        got = r2.get_json()
        assert got["id"] == details["order_id"] and got["status"] == "open" and got["broker_order_id"]
    finally:
        book.release.set()
    assert _places(upstox) == 1 and [o["tag"] for o in book.orders.values()] == ["k-123"]
    statuses = [p["status"] for _, ev, p in events if ev == "order_update"]
    assert statuses[:2] == ["submitting", "unknown"] and statuses[-1] == "open"


def test_order_that_reaches_the_book_late_is_found_within_the_grace_period(
    app,
    client,
    trader,
    upstox,
    events,
    market,
):
    _, headers = trader
    account_id = _live_account(client, headers, upstox)
    _configure((app,), **{**FAST, "UPSTOX_ORDER_LOOKUP_GRACE_SECONDS": 3.0})
    book = book_of(upstox)
    book.hang_next_place = 1
    book.book_delay = 0.8  # not in the book at the first look-ups
    try:
        r = client.post("/api/v1/orders", json=_body(account_id, "late-1"), headers=headers)
    finally:
        book.release.set()
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["status"] == "open" and r.get_json()["broker_order_id"] in book.orders
    assert _places(upstox) == 1
    # the look-up polled the book several times before it appeared
    assert len(upstox.calls("/v2/order/retrieve-all")) >= 3


def test_confirmed_absence_allows_exactly_one_resend(app, client, trader, upstox, second):
    _, headers = trader
    account_id = _live_account(client, headers, upstox)
    _configure((app, second), **FAST)
    book = book_of(upstox)
    book.drop_next_place = 1  # lost before Upstox accepted it
    try:
        r1 = client.post("/api/v1/orders", json=_body(account_id, "lost-1"), headers=headers)
    finally:
        book.release.set()
    assert r1.status_code == 503 and r1.get_json()["error"]["details"]["outcome"] == "unknown"
    assert book.orders == {}
    r2 = second.test_client().post("/api/v1/orders", json=_body(account_id, "lost-1"), headers=headers)
    assert r2.status_code == 201, r2.get_json()
    assert _places(upstox) == 2 and [o["tag"] for o in book.orders.values()] == ["lost-1"]
    # a third retry finds the order, sends nothing
    r3 = client.post("/api/v1/orders", json=_body(account_id, "lost-1"), headers=headers)
    assert r3.status_code == 201 and r3.get_json()["id"] == r2.get_json()["id"]
    assert _places(upstox) == 2


def test_failed_book_reads_are_not_an_absence(app, client, trader, upstox, market):
    from tests.stubs.upstox_stub import SERVER_ERROR

    _, headers = trader
    account_id = _live_account(client, headers, upstox)
    _configure((app,), **{**FAST, "UPSTOX_BREAKER_FAIL_MAX": 100})
    book = book_of(upstox)
    book.drop_next_place = 1
    try:
        client.post("/api/v1/orders", json=_body(account_id, "dark-1"), headers=headers)
    finally:
        book.release.set()
    upstox.fail_next(SERVER_ERROR, times=50)  # the order book cannot be read
    r = client.post("/api/v1/orders", json=_body(account_id, "dark-1"), headers=headers)
    assert r.status_code == 503 and r.get_json()["error"]["details"]["status"] == "unknown"
    assert _places(upstox) == 1  # never re-sent without a confirmed absence
    upstox.forced.clear()


def test_resolver_settles_unknown_rows_and_emits_events(app, client, trader, upstox, events, market):
    from backend.extensions import db
    from backend.models.trading import Order
    from backend.services.trading.orders import live

    _, headers = trader
    account_id = _live_account(client, headers, upstox)
    _configure((app,), **{**FAST, "UPSTOX_ORDER_LOOKUP_GRACE_SECONDS": 0.0})
    book = book_of(upstox)
    book.hang_next_place, book.book_delay = 1, 0.5
    try:
        a = client.post("/api/v1/orders", json=_body(account_id, "bg-found"), headers=headers)
    finally:
        book.release.set()
    book.release.clear()
    book.drop_next_place = 1
    try:
        b = client.post("/api/v1/orders", json=_body(account_id, "bg-absent"), headers=headers)
    finally:
        book.release.set()
    found_id = a.get_json()["error"]["details"]["order_id"]
    absent_id = b.get_json()["error"]["details"]["order_id"]
    time.sleep(0.6)
    events.clear()
    app.config["UPSTOX_UNKNOWN_SETTLE_AFTER_SECONDS"] = 0.0
    with app.app_context():
        got = live.resolve_unknown_orders()
        assert got == {"checked": 2, "found": 1, "settled_absent": 1, "still_unknown": 0}
        assert db.session.get(Order, found_id).status == "open"
        absent = db.session.get(Order, absent_id)
        assert absent.status == "rejected" and "never reached" in absent.status_message
    assert {(p["id"], p["status"]) for _, ev, p in events if ev == "order_update"} == {
        (found_id, "open"),
        (absent_id, "rejected"),
    }
    assert _places(upstox) == 2  # the resolver never sends


def test_only_one_worker_wins_the_resend_claim(app, client, trader, upstox, market):
    from datetime import UTC, datetime

    from backend.extensions import db
    from backend.models.trading import Order
    from backend.services.trading.orders import live

    _, headers = trader
    account_id = _live_account(client, headers, upstox)
    _configure((app,), **FAST)
    book = book_of(upstox)
    book.drop_next_place = 1
    try:
        r = client.post("/api/v1/orders", json=_body(account_id, "claim-1"), headers=headers)
    finally:
        book.release.set()
    order_id = r.get_json()["error"]["details"]["order_id"]
    with app.app_context():
        row = db.session.get(Order, order_id)
        now = datetime.now(UTC)
        assert live._claim_resend(row, now) is True
        assert live._claim_resend(row, now) is False  # the other worker's attempt
