"""A trader's 400-share order fills 250 then 150: it pays one brokerage, the contract note of one
executed order. A second delivery sale of a scrip the same day pays no second DP charge."""

from __future__ import annotations

from decimal import Decimal

from tests.services import trading_support
from tests.services.trading_support import check_invariants

D = Decimal
market = trading_support.market  # shared fixture: RELIANCE 1000, SBIN 800, INFY 1500
events = trading_support.events


def _fill(app, order_id: int, qty: int, price: str) -> None:
    """What the tick matcher does when a resting order partly fills: one fill, committed."""
    from backend.extensions import db
    from backend.models.trading import Order
    from backend.services.trading.common import Events, lock_account
    from backend.services.trading.paper_broker import apply_fill

    with app.app_context():
        row = db.session.get(Order, order_id)
        acct = lock_account(row.account_id)
        apply_fill(acct, row, qty, D(price), "EQ", Events())
        db.session.commit()
        db.session.remove()


def test_partially_filled_order_pays_one_brokerage(app, client, trader, market, events):
    _, h = trader
    r = client.post(
        "/api/v1/orders",
        json={"symbol": "SBIN", "side": "BUY", "type": "LIMIT", "price": "790.00", "quantity": 400,
              "product": "I"},
        headers=h,
    )  # fmt: skip
    assert r.status_code == 201 and r.get_json()["status"] == "open", r.get_json()
    oid = r.get_json()["id"]
    _fill(app, oid, 250, "790.00")
    _fill(app, oid, 150, "790.00")
    trades = client.get(f"/api/v1/orders/{oid}/trades", headers=h).get_json()
    # intraday BUY 400 @ 790 = 316000 as one executed order:
    #   brokerage min(0.1% = 316, 20) = 20; txn 9.3852 -> 9.39; SEBI 0.316 -> 0.32; IPFT 0.32
    #   GST 18% x (20 + 9.39 + 0.32 + 0.32 = 30.03) = 5.4054 -> 5.41; stamp 0.003% = 9.48 -> 44.92
    # first fill (197500 so far): 20 + 5.87 + 0.20 + 0.20 + GST 18% x 26.27 = 4.73 + stamp 5.93 = 36.93
    # second fill adds 44.92 - 36.93 = 7.99. Charged per fill it would have paid a second brokerage:
    # 150 @ 790 = 118500 -> 20 + 3.52 + 0.12 + 0.12 + 4.28 + 3.56 = 31.60, 68.53 for the order.
    assert [(t["quantity"], D(t["charges"])) for t in trades] == [(250, D("36.93")), (150, D("7.99"))]
    assert sum(D(t["charges"]) for t in trades) == D("44.92")
    check_invariants(app, r.get_json()["account_id"])


def test_dp_charge_once_per_scrip_per_delivery_sell_day(app, client, trader, market, events):
    _, h = trader
    buy = {"symbol": "SBIN", "side": "BUY", "type": "MARKET", "quantity": 20, "product": "D"}
    assert client.post("/api/v1/orders", json=buy, headers=h).status_code == 201
    sell = {"symbol": "SBIN", "side": "SELL", "type": "MARKET", "quantity": 10, "product": "D"}
    first = client.post("/api/v1/orders", json=sell, headers=h).get_json()
    second = client.post("/api/v1/orders", json=sell, headers=h).get_json()
    t1 = client.get(f"/api/v1/orders/{first['id']}/trades", headers=h).get_json()[0]
    t2 = client.get(f"/api/v1/orders/{second['id']}/trades", headers=h).get_json()[0]
    assert t1["price"] == t2["price"]
    # the first sale pays the Rs 18.50 DP charge plus its 18% GST (3.33); the second pays neither
    assert D(t1["charges"]) - D(t2["charges"]) == D("21.83")
    check_invariants(app, first["account_id"])
