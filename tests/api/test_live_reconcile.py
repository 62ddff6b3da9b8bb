"""Reconciliation that matches the broker: holdings kept, MTF / unknown texts tolerated, trades added once,
status changes through the order state machine (against the local Upstox stub)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from tests.api import test_broker
from tests.api.test_broker import connect
from tests.services import trading_support
from tests.stubs.upstox_orders_stub import book_of

upstox = test_broker.upstox  # shared fixture (the stub on an ephemeral port)
market = trading_support.market

HOLDING = {
    "isin": "INE467B01029",
    "instrument_token": "NSE_EQ|INE467B01029",
    "trading_symbol": "TCS",
    "quantity": 10,
    "average_price": 3300.5,
    "last_price": 3450.0,
    "product": "D",
}


def _account(client, headers, state) -> int:
    _, _, cb = connect(client, headers, state)
    assert cb.status_code == 200, cb.get_json()
    return cb.get_json()["account_id"]


def _reconcile(client, headers, acct_id) -> dict:
    r = client.post("/api/v1/broker/reconcile", json={"account_id": acct_id}, headers=headers)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_holdings_from_an_earlier_session_are_kept(client, trader, upstox, app):
    uid, headers = trader
    acct_id = _account(client, headers, upstox)
    book_of(upstox).holdings.append(dict(HOLDING))
    with app.app_context():
        from backend.extensions import db
        from backend.models.trading import Position

        db.session.add(
            Position(account_id=acct_id, symbol="TCS", product="D", quantity=10, cost_basis=Decimal("33005"))
        )
        db.session.commit()
    rep = _reconcile(client, headers, acct_id)
    assert rep["differences"] == []  # nothing "closed": the holding is the broker's too
    # a delivery buy today (short-term position) adds to the holding of the same symbol
    book_of(upstox).positions.append(
        {"product": "D", "instrument_token": "NSE_EQ|INE467B01029", "trading_symbol": "TCS-EQ",
         "quantity": 2, "average_price": 3450.0, "realised": 0, "unrealised": 0, "last_price": 3450.0}
    )  # fmt: skip
    rep = _reconcile(client, headers, acct_id)
    assert {(d["key"], d["field"], d["broker"]) for d in rep["differences"]} == {
        ("TCS", "quantity", "12"),
        ("TCS", "cost_basis", "39905.0000"),
    }
    with app.app_context():
        from backend.extensions import db
        from backend.models.trading import Position

        pos = db.session.scalar(select(Position).where(Position.account_id == acct_id))
        assert (pos.quantity, pos.cost_basis, pos.product) == (12, Decimal("39905"), "D")


def test_mtf_order_and_unknown_status_in_the_book_never_break_listing_or_reconciliation(
    client, trader, upstox, app
):
    _, headers = trader
    acct_id = _account(client, headers, upstox)
    book = book_of(upstox)
    mtf = book.add_order(
        product="MTF", status="complete", quantity=4, filled_quantity=4, average_price=1401.0
    )
    odd = book.add_order(product="CO", status="some status upstox adds later", quantity=1)
    book.positions.append(
        {"product": "MTF", "instrument_token": "NSE_EQ|INE002A01018", "trading_symbol": "RELIANCE-EQ",
         "quantity": 4, "average_price": 1401.0, "realised": 0, "unrealised": 0, "last_price": 1400.0}
    )  # fmt: skip
    rep = _reconcile(client, headers, acct_id)
    assert rep["errors"] == []
    created = {d["key"]: d["broker"] for d in rep["differences"] if d["kind"] == "order"}
    assert created == {mtf["order_id"]: "filled", odd["order_id"]: "other"}
    listed = client.get(f"/api/v1/orders?account_id={acct_id}", headers=headers)
    assert listed.status_code == 200, listed.get_json()
    by_id = {o["broker_order_id"]: o for o in listed.get_json()["items"]}
    assert (by_id[mtf["order_id"]]["product"], by_id[mtf["order_id"]]["broker_product"]) == ("other", "MTF")
    assert by_id[odd["order_id"]]["status"] == "other"
    assert by_id[odd["order_id"]]["broker_status"] == "some status upstox adds later"
    # the unknown status later becomes a known one: the state machine allows other -> cancelled
    book.set_status(odd["order_id"], "cancelled")
    rep = _reconcile(client, headers, acct_id)
    assert [(d["key"], d["field"], d["ours"], d["broker"]) for d in rep["differences"]] == [
        (odd["order_id"], "status", "other", "cancelled")
    ]


def test_trades_are_reconciled_once_and_final_statuses_never_move_back(client, trader, upstox, app):
    _, headers = trader
    acct_id = _account(client, headers, upstox)
    book = book_of(upstox)
    o = book.add_order(quantity=10, filled_quantity=10, average_price=1400.5, status="complete")
    book.trades.append(
        {"exchange": "NSE", "product": "D", "trading_symbol": "RELIANCE-EQ",
         "instrument_token": "NSE_EQ|INE002A01018", "order_type": "MARKET", "transaction_type": "BUY",
         "quantity": 10, "exchange_order_id": "1", "order_id": o["order_id"],
         "exchange_timestamp": "2025-11-20 10:15:01", "average_price": 1400.5, "trade_id": "T-1",
         "order_ref_id": None, "order_timestamp": "2025-11-20 10:15:00"}
    )  # fmt: skip
    first = _reconcile(client, headers, acct_id)
    assert ("trade", "T-1") in {(d["kind"], d["key"]) for d in first["differences"]}
    again = _reconcile(client, headers, acct_id)
    assert [d for d in again["differences"] if d["kind"] == "trade"] == []
    with app.app_context():
        from backend.extensions import db
        from backend.models.trading import Order, Trade

        trades = db.session.scalars(select(Trade).where(Trade.account_id == acct_id)).all()
        assert [(t.broker_trade_id, t.quantity, t.price) for t in trades] == [("T-1", 10, Decimal("1400.5"))]
        row = db.session.scalar(select(Order).where(Order.broker_order_id == o["order_id"]))
        assert row.status == "filled"
    # the broker's book now (wrongly) says open: filled is final, the state machine keeps it
    book.set_status(o["order_id"], "open")
    rep = _reconcile(client, headers, acct_id)
    assert [d for d in rep["differences"] if d["field"] == "status"] == []
    with app.app_context():
        from backend.extensions import db
        from backend.models.trading import Order

        assert (
            db.session.scalar(select(Order.status).where(Order.broker_order_id == o["order_id"])) == "filled"
        )
