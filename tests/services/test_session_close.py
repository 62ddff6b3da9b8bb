"""The session-close tasks: DAY orders expire, IOC/filled ones are untouched, snapshots are taken."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from backend.extensions import db
from backend.models.strategies import EquitySnapshot
from tests.services import trading_support
from tests.services.trading_support import order_body

market = trading_support.market  # shared fixture
events = trading_support.events  # shared fixture


def test_session_close_expires_day_orders_then_snapshots(app, client, trader, market, events):
    _, h = trader
    body = order_body(type="LIMIT", price="990.00", quantity=5)
    resting = client.post("/api/v1/orders", json=body, headers=h)
    assert resting.status_code == 201 and resting.get_json()["status"] == "open"
    filled = client.post("/api/v1/orders", json=order_body(), headers=h).get_json()
    assert filled["status"] == "filled"

    result = app.test_cli_runner().invoke(args=["session", "close", "--day", "2026-11-23"])
    assert result.exit_code == 0, result.output
    assert "expire_day_orders: 1" in result.output and "equity_snapshots: 1" in result.output

    order = client.get(f"/api/v1/orders/{resting.get_json()['id']}", headers=h).get_json()
    assert order["status"] == "expired" and Decimal(order["reserved_cash"]) == 0
    assert client.get(f"/api/v1/orders/{filled['id']}", headers=h).get_json()["status"] == "filled"
    with app.app_context():
        snap = db.session.query(EquitySnapshot).one()
        assert snap.day == date(2026, 11, 23)
        summary = client.get("/api/v1/portfolio", headers=h).get_json()
        assert Decimal(snap.equity) == Decimal(summary["equity"]).quantize(Decimal(snap.equity))
