"""Live baskets and sliced live orders are exactly-once per leg, against the local Upstox stub.

Every leg is recorded (with its key ``<key>/<i>``) before the first broker call; a leg whose answer is
lost stays ``unknown``, the legs after it are not sent; a retry with the same key looks each leg up by
its tag and sends only what the broker does not hold.
"""

from __future__ import annotations

import contextlib
import time
from datetime import datetime

import pytest
from sqlalchemy import select

from backend.domain.errors import BrokerUnavailable, ValidationFailed
from backend.domain.market.calendar import IST
from tests.api import test_broker
from tests.api import test_live_exactly_once as exactly_once
from tests.api.test_broker import connect
from tests.api.test_live_exactly_once import FAST, _configure, _places
from tests.services import trading_support
from tests.stubs.upstox_orders_stub import book_of

upstox = test_broker.upstox
_second_app = exactly_once._second_app  # shared fixtures: a second app instance on the same database
second = exactly_once.second
market = trading_support.market
events = trading_support.events


@pytest.fixture(autouse=True)
def _in_session(market_clock):
    market_clock(datetime(2026, 12, 3, 11, 0, tzinfo=IST), clock="always_open")


LEGS = [
    {"symbol": "RELIANCE", "side": "BUY", "type": "LIMIT", "quantity": 1, "price": "990.00", "product": "D"},
    {"symbol": "RELIANCE", "side": "BUY", "type": "LIMIT", "quantity": 2, "price": "991.00", "product": "D"},
    {"symbol": "RELIANCE", "side": "BUY", "type": "LIMIT", "quantity": 3, "price": "992.00", "product": "D"},
]


def _live_account(client, headers, state) -> int:
    _, _, cb = connect(client, headers, state)
    assert cb.status_code == 200, cb.get_json()
    return cb.get_json()["account_id"]


def _basket(app, uid, account_id, key, legs=LEGS):
    from backend.extensions import db
    from backend.models.user import User
    from backend.services.trading import orders

    with app.app_context():
        try:
            rows = orders.place_basket(
                db.session.get(User, uid), legs, account_id=account_id, idempotency_key=key
            )
            return [(r.id, r.client_order_id, r.status, r.broker_order_id) for r in rows]
        finally:
            db.session.remove()


def _rows(app, account_id):
    from backend.extensions import db
    from backend.models.trading import Order

    with app.app_context():
        try:
            return [
                (r.client_order_id, r.status)
                for r in db.session.scalars(
                    select(Order).where(Order.account_id == account_id).order_by(Order.id)
                )
            ]
        finally:
            db.session.remove()


def _tags(state):
    return sorted(o["tag"] for o in book_of(state).orders.values())


def test_timeout_on_leg_2_after_acceptance_gives_exactly_one_order_per_leg(
    app, client, trader, upstox, second, events
):
    uid, headers = trader
    account_id = _live_account(client, headers, upstox)
    _configure((app, second), **FAST)
    book = book_of(upstox)
    book.hang_at = {2}  # Upstox accepts leg 1 (the second leg), its answer never arrives in time
    book.book_delay = 1.0  # ... and it reaches the order book after the first look-up gave up
    try:
        with pytest.raises(BrokerUnavailable) as err:
            _basket(app, uid, account_id, "bk-1")
    finally:
        book.release.set()
    details = err.value.details
    assert details["outcome"] == "unknown" and details["leg"] == 1 and len(details["order_ids"]) == 3
    # every leg was recorded; leg 0 placed (acknowledged: pending), leg 1 unknown, leg 2 never sent
    assert _rows(app, account_id) == [("bk-1/0", "pending"), ("bk-1/1", "unknown"), ("bk-1/2", "unknown")]
    assert _places(upstox) == 2 and _tags(upstox) == ["bk-1/0", "bk-1/1"]
    statuses = [(p["client_order_id"], p["status"]) for _, ev, p in events if ev == "order_update"]
    assert statuses[:3] == [("bk-1/0", "submitting"), ("bk-1/1", "submitting"), ("bk-1/2", "submitting")]
    time.sleep(1.0)  # the accepted leg is now in the book
    # the retry lands on another worker: leg 1 is found by its tag, leg 2 confirmed absent and sent once
    got = _basket(second, uid, account_id, "bk-1")
    # leg 1 takes the book's status (open); leg 2's placement was acknowledged (pending)
    assert [(k, s) for _, k, s, _ in got] == [
        ("bk-1/0", "pending"),
        ("bk-1/1", "open"),
        ("bk-1/2", "pending"),
    ]
    assert all(b for *_, b in got)
    assert _places(upstox) == 3 and _tags(upstox) == ["bk-1/0", "bk-1/1", "bk-1/2"]
    # a further retry sends nothing
    again = _basket(app, uid, account_id, "bk-1")
    assert [r[0] for r in again] == [r[0] for r in got] and _places(upstox) == 3


@contextlib.contextmanager
def _fail_place(state, n: int, error):
    """The ``n``-th placement the stub receives answers ``error`` (Upstox's documented body)."""
    original = state.check_auth
    calls = {"n": 0}

    def check():
        from flask import request

        if request.path == "/v3/order/place":
            calls["n"] += 1
            if calls["n"] == n:
                state.forced.append(error)
        return original()

    state.check_auth = check
    try:
        yield
    finally:
        state.check_auth = original


def test_a_leg_the_broker_refuses_stops_the_legs_after_it(app, client, trader, upstox, events, market):
    from tests.stubs.upstox_orders_stub import INSUFFICIENT_FUNDS

    uid, headers = trader
    account_id = _live_account(client, headers, upstox)
    _configure((app,), **FAST)
    with _fail_place(upstox, 2, INSUFFICIENT_FUNDS), pytest.raises(ValidationFailed) as err:
        _basket(app, uid, account_id, "bk-2")
    assert err.value.details["leg"] == 1 and "Insufficient funds" in err.value.message
    assert _rows(app, account_id) == [("bk-2/0", "pending"), ("bk-2/1", "rejected"), ("bk-2/2", "rejected")]
    assert _tags(upstox) == ["bk-2/0"]  # the refused leg was not placed, the one after it never sent
    again = _basket(app, uid, account_id, "bk-2")  # a retry changes nothing and sends nothing
    assert [s for _, _, s, _ in again] == ["pending", "rejected", "rejected"] and _places(upstox) == 2


def test_circuit_open_mid_basket_keeps_the_unsent_legs_for_the_retry(app, client, trader, upstox, market):
    from tests.stubs.upstox_stub import SERVER_ERROR

    uid, headers = trader
    account_id = _live_account(client, headers, upstox)
    _configure((app,), **{**FAST, "UPSTOX_BREAKER_FAIL_MAX": 1, "UPSTOX_BREAKER_RESET_SECONDS": 0.5})
    # leg 0 goes; leg 1 meets a 500 (outcome unknown) that opens the circuit; leg 2 is not sent
    with _fail_place(upstox, 2, SERVER_ERROR), pytest.raises(BrokerUnavailable):
        _basket(app, uid, account_id, "bk-3")
    rows = _rows(app, account_id)
    assert [k for k, _ in rows] == ["bk-3/0", "bk-3/1", "bk-3/2"]  # nothing dropped
    assert rows[0][1] == "pending" and {s for _, s in rows[1:]} == {"unknown"}
    assert _tags(upstox) == ["bk-3/0"]
    time.sleep(0.6)  # the circuit half-opens
    got = _basket(app, uid, account_id, "bk-3")
    assert [s for _, _, s, _ in got] == ["pending", "pending", "pending"]
    assert _tags(upstox) == ["bk-3/0", "bk-3/1", "bk-3/2"]  # exactly one order per leg


def _option(app):
    from backend.extensions import db
    from backend.models.market import Instrument

    with app.app_context():
        row = db.session.scalars(
            select(Instrument)
            .where(Instrument.segment == "NSE_FO", Instrument.freeze_quantity.is_not(None))
            .order_by(Instrument.expiry.desc())
            .limit(1)
        ).one()
        return row.trading_symbol, row.lot_size, row.freeze_quantity


def test_sliced_live_order_timeout_on_slice_2_gives_one_order_per_slice(app, client, trader, upstox, market):
    _, headers = trader
    account_id = _live_account(client, headers, upstox)
    _configure((app,), **FAST)
    symbol, lot, freeze = _option(app)
    market.set(symbol, "1")
    per = freeze - freeze % lot
    qty = per * 2 + lot  # three slices
    body = {"account_id": account_id, "symbol": symbol, "side": "BUY", "type": "LIMIT", "product": "D",
            "quantity": qty, "price": "1.00", "slice": True, "client_order_id": "sl-1"}  # fmt: skip
    book = book_of(upstox)
    book.hang_at, book.book_delay = {2}, 1.0
    try:
        r = client.post("/api/v1/orders", json=body, headers=headers)
    finally:
        book.release.set()
    assert r.status_code == 503, r.get_json()
    assert r.get_json()["error"]["details"]["leg"] == 1
    assert _tags(upstox) == ["sl-1", "sl-1/1"]
    time.sleep(1.0)
    r2 = client.post("/api/v1/orders", json=body, headers=headers)
    assert r2.status_code == 201, r2.get_json()
    assert _rows(app, account_id) == [("sl-1", "pending"), ("sl-1/1", "open"), ("sl-1/2", "pending")]
    assert _tags(upstox) == ["sl-1", "sl-1/1", "sl-1/2"] and _places(upstox) == 3
    assert sorted(o["quantity"] for o in book.orders.values()) == sorted([per, per, lot])
