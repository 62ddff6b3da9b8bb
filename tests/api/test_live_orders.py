"""A live (Upstox) account through /api/v1/orders, against the local Upstox stub.

Buying power comes from the broker's funds, the order goes to Upstox with our client_order_id as
its tag, and modify/cancel address Upstox's own order id.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from backend.domain.market.calendar import IST
from tests.api.test_broker import connect, upstox  # noqa: F401 - fixture
from tests.services import trading_support
from tests.stubs.upstox_orders_stub import book_of

market = trading_support.market  # shared fixture (quotes for the risk checks)


@pytest.fixture(autouse=True)
def _in_session(market_clock):
    # a live account trades by the exchange's calendar whatever MARKET_CLOCK says: pin a session time
    market_clock(datetime(2026, 12, 3, 11, 0, tzinfo=IST), clock="always_open")


def _live_account(client, headers, state) -> int:
    _, _, cb = connect(client, headers, state)
    assert cb.status_code == 200, cb.get_json()
    return cb.get_json()["account_id"]


def test_live_limit_order_reaches_upstox_and_cancel_uses_its_order_id(client, trader, upstox, market):  # noqa: F811
    _, headers = trader
    account_id = _live_account(client, headers, upstox)
    body = {"account_id": account_id, "symbol": "RELIANCE", "side": "BUY", "type": "LIMIT", "product": "D",
            "quantity": 2, "price": "990.00", "client_order_id": "bot-42"}  # fmt: skip
    r = client.post("/api/v1/orders", json=body, headers=headers)
    assert r.status_code == 201, r.get_json()
    order = r.get_json()
    book = book_of(upstox)
    placed = [o for o in book.orders.values() if o.get("tag") == "bot-42"]
    assert len(placed) == 1 and placed[0]["quantity"] == 2 and float(placed[0]["price"]) == 990.0
    upstox_id = placed[0]["order_id"]

    r = client.delete(f"/api/v1/orders/{order['id']}", headers=headers)
    assert r.status_code == 200, r.get_json()
    assert book.orders[upstox_id]["status"] == "cancelled"


def test_live_buying_power_is_the_broker_available_margin(client, trader, upstox, market):  # noqa: F811
    _, headers = trader
    account_id = _live_account(client, headers, upstox)
    book_of(upstox).funds["available_margin"] = 1500.0  # rupees at the broker
    body = {"account_id": account_id, "symbol": "RELIANCE", "side": "BUY", "type": "LIMIT", "product": "D",
            "quantity": 2, "price": "990.00"}  # fmt: skip
    r = client.post("/api/v1/orders", json=body, headers=headers)
    assert r.status_code == 422, r.get_json()
    checks = {c["name"] for c in r.get_json()["error"]["details"]["checks"]}
    assert "buying_power" in checks
    assert not [o for o in book_of(upstox).orders.values() if o.get("quantity") == 2]


def test_always_open_never_opens_the_market_for_a_live_account(client, trader, upstox, market, market_clock):  # noqa: F811
    # the simulated 24x7 session is on, but a live account trades by the exchange: at 20:13 IST a
    # MARKET order is refused before it reaches Upstox, and a LIMIT AMO goes to Upstox with is_amo
    market_clock(datetime(2026, 12, 3, 20, 13, tzinfo=IST), clock="always_open")
    _, headers = trader
    account_id = _live_account(client, headers, upstox)
    body = {"account_id": account_id, "symbol": "RELIANCE", "side": "BUY", "type": "MARKET", "product": "D",
            "quantity": 2}  # fmt: skip
    r = client.post("/api/v1/orders", json=body, headers=headers)
    assert r.status_code == 422
    assert r.get_json()["error"]["details"]["next_open"] == "2026-12-04T03:45:00+00:00"
    assert book_of(upstox).orders == {}

    amo = {**body, "type": "LIMIT", "price": "990.00", "amo": True, "client_order_id": "amo-1"}
    r = client.post("/api/v1/orders", json=amo, headers=headers)
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["amo"] is True
    placed = [o for o in book_of(upstox).orders.values() if o.get("tag") == "amo-1"]
    assert len(placed) == 1 and placed[0].get("is_amo") is True
