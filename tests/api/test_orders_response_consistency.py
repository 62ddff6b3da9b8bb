"""The placement response is built from the rows kept in memory after the commit (no reload query):
it must equal what the database stored, field for field, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime
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


def test_order_on_a_held_position_bypasses_the_unit_of_work_and_equals_the_database(
    client, trader, market, app, monkeypatch
):
    """The second order's rows (order, trade, position, account) are written by Core statements
    (``row_writes``): the ORM has nothing left to flush, and what it keeps equals what was stored."""
    from sqlalchemy.orm import Session

    from backend.services.trading import row_writes

    _, h = trader
    first = client.post(URL, json=order_body(quantity=3), headers=h)  # a new position: the ORM path
    assert first.status_code == 201
    inserted: list[str] = []
    real = row_writes._insert_row

    def spy(session, obj, extra=None):
        inserted.append(type(obj).__name__)
        real(session, obj, extra)

    monkeypatch.setattr(row_writes, "_insert_row", spy)
    flushes: list[int] = []

    def count(session, *_):
        flushes.append(len(session.new) + len(session.dirty))

    event.listen(Session, "before_flush", count)
    try:
        r = client.post(URL, json=order_body(quantity=4), headers=h)
    finally:
        event.remove(Session, "before_flush", count)
    assert r.status_code == 201, r.get_json()
    assert inserted == ["Order", "Trade"] and flushes == [], (inserted, flushes)
    placed = r.get_json()
    _same_as_stored(client, h, placed)
    pos = client.get("/api/v1/portfolio/positions", headers=h).get_json()
    rel = [p for p in (pos["items"] if isinstance(pos, dict) else pos) if p["symbol"] == "RELIANCE"]
    assert rel and rel[0]["quantity"] == 7
    check_invariants(app, placed["account_id"])


def _utc(value):
    """SQLite reads a plain ``DateTime(timezone=True)`` column back naive (stored as UTC)."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def test_flush_order_writes_every_pending_row_and_leaves_the_session_clean(app, trader):
    """Directly: the Core path for an order, its trade and a moved position and account; and the
    unit of work when anything else is pending. Either way each object is persistent, clean and
    equal to its stored row (``updated_at`` included)."""
    from sqlalchemy import inspect, select

    from backend.extensions import db
    from backend.models import LedgerEntry, Order, Position, Trade, User
    from backend.services.trading.accounts import default_account
    from backend.services.trading.row_writes import flush_order

    uid, _ = trader
    with app.app_context():
        acct = default_account(db.session.get(User, uid))
        pos = Position(account_id=acct.id, symbol="SBIN", product="D", quantity=1, cost_basis=Decimal(800))
        db.session.add(pos)
        db.session.commit()

        def order(**kw):
            base = dict(account_id=acct.id, user_id=uid, symbol="SBIN", side="BUY", type="MARKET")
            return Order(**(base | dict(product="D", quantity=2, filled_quantity=2, status="filled") | kw))

        # the Core path: an order, its trade, the position and the account moved by it
        row = order(average_price=Decimal("801.255"))
        trade = Trade(account_id=acct.id, order=row, symbol="SBIN", side="BUY", product="D")
        trade.quantity, trade.price = 2, Decimal("801.255")
        db.session.add_all([row, trade])
        before = pos.updated_at
        pos.quantity, pos.cost_basis = 3, Decimal("2402.51")
        acct.cash = Decimal(acct.cash) - Decimal("1602.51")
        flush_order(db.session(), row)
        # and the unit of work, with an unrelated pending row
        other = order(type="LIMIT", price=Decimal("700"), status="open", filled_quantity=0)
        deposit = LedgerEntry(account_id=acct.id, kind="deposit", amount=Decimal(5), note="test")
        db.session.add_all([other, deposit])
        flush_order(db.session(), other)

        objects = (row, trade, pos, acct, other, deposit)
        assert not db.session.new and not db.session.dirty
        for obj in objects:
            state = inspect(obj)
            assert state.persistent and not state.modified, obj
        assert row.average_price == Decimal("801.2550") and trade.order_id == row.id
        assert _utc(pos.updated_at) > _utc(before)
        conn = db.session.connection()
        for obj in objects:
            table = type(obj).__table__
            stored = conn.execute(select(table).where(table.c.id == obj.id)).one()._mapping
            for col in table.c:
                assert _utc(getattr(obj, col.key)) == _utc(stored[col]), (type(obj).__name__, col.key)
        db.session.commit()
        assert db.session.get(Position, pos.id).quantity == 3
