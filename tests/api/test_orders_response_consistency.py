"""The placement response is built from the rows kept in memory after the commit (no reload query):
it must equal what the database stored, field for field, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import event

from tests.services import trading_support
from tests.services.trading_support import check_invariants, order_body

events = trading_support.events  # shared fixture
market = trading_support.market  # shared fixture
URL = "/api/v1/orders"


def _same_as_stored(client, headers, placed: dict) -> None:
    stored = client.get(f"{URL}/{placed['id']}", headers=headers).get_json()
    assert placed == stored


def test_filled_market_order_response_equals_stored_row(client, trader, market, app):
    _, h = trader
    r = client.post(URL, json=order_body(quantity=7), headers=h)
    assert r.status_code == 201, r.get_json()
    placed = r.get_json()
    assert placed["status"] == "filled"
    # 1000.60 fill; amounts carry the column's 4 decimals exactly as read back
    assert placed["average_price"] == "1000.6000"
    _same_as_stored(client, h, placed)
    check_invariants(app, placed["account_id"])


def test_resting_limit_with_odd_reserve_response_equals_stored_row(client, trader, market):
    _, h = trader
    r = client.post(URL, json=order_body(type="LIMIT", price="990.05", quantity=3), headers=h)
    assert r.status_code == 201, r.get_json()
    placed = r.get_json()
    assert placed["status"] == "open" and placed["price"] == "990.0500"
    assert Decimal(placed["reserved_cash"]) > Decimal("2970.15")
    _same_as_stored(client, h, placed)


def test_idempotent_replay_equals_first_response(client, trader, market):
    _, h = trader
    body = order_body(type="LIMIT", price="995.35", quantity=2, client_order_id="cons-1")
    first = client.post(URL, json=body, headers=h)
    again = client.post(URL, json=body, headers=h)
    assert first.status_code == again.status_code == 201
    assert first.get_json() == again.get_json()


def test_placement_issues_no_reload_queries(client, trader, market, app):
    """One market order: the response and the access log read no row back after the commit."""
    from backend.extensions import db

    _, h = trader
    assert client.post(URL, json=order_body(), headers=h).status_code == 201  # creates the account
    seen: list[str] = []

    def record(conn, cursor, statement, params, context, executemany):
        seen.append(" ".join(statement.split()).lower())

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.post(URL, json=order_body(), headers=h).status_code == 201
    finally:
        event.remove(engine, "before_cursor_execute", record)
    selects = [s for s in seen if s.startswith("select")]
    assert len([s for s in selects if " from users " in s]) == 1, selects  # authentication only
    # the positions and the working orders' reserved cash: one statement
    order_reads = [s for s in selects if " from orders " in s]
    assert len(order_reads) == 1 and "sum(orders.reserved_cash)" in order_reads[0], order_reads
    assert "join positions" in order_reads[0], order_reads
    assert len([s for s in selects if "positions" in s]) == 1, selects
    # the account is locked and read once, together with the global kill switch
    account_reads = [s for s in selects if " from trading_accounts" in s]
    assert len(account_reads) == 1 and "trading_settings" in account_reads[0], account_reads
    # each row is written once: the order is inserted filled (one flush), never updated after
    writes = [
        s.split(" (")[0].split(" set ")[0] for s in seen if s.startswith(("insert", "update", "delete"))
    ]
    assert "update orders" not in writes and writes.count("insert into orders") == 1, seen
    assert writes.count("update trading_accounts") == writes.count("update positions") == 1, seen
    assert sorted(set(writes)) == [
        "insert into ledger_entries",
        "insert into orders",
        "insert into trades",
        "update positions",
        "update trading_accounts",
    ], seen
