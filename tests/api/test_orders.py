"""Orders API: placement, fills, idempotency, validation, risk rejections, ownership, events."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.services import trading_support
from tests.services.trading_support import check_invariants, order_body

D = Decimal
events = trading_support.events  # shared fixture
market = trading_support.market  # shared fixture
URL = "/api/v1/orders"


def _acct(client, headers) -> dict:
    return client.get("/api/v1/portfolio/accounts", headers=headers).get_json()[0]


def test_market_buy_fills_at_slipped_ask_with_exact_cash(client, trader, market, app):
    _, h = trader
    r = client.post(URL, json=order_body(), headers=h)
    assert r.status_code == 201, r.get_json()
    o = r.get_json()
    # ask 1000.05 * (1 + 5 bps) = 1000.550025 -> rounded up (against the buyer) to the 0.05 tick
    assert o["status"] == "filled" and o["filled_quantity"] == 10
    assert D(o["average_price"]) == D("1000.60")
    trades = client.get(f"{URL}/{o['id']}/trades", headers=h).get_json()
    assert len(trades) == 1 and D(trades[0]["price"]) == D("1000.60")
    # delivery BUY 10 @ 1000.60, turnover 10006.00: brokerage 20, STT 10.01, txn 0.30, SEBI 0.01,
    # IPFT 0.01, GST 18% of 20.32 = 3.6576 -> 3.66, stamp 1.50 -> 35.49
    assert D(trades[0]["charges"]) == D("35.49")
    summary = client.get("/api/v1/portfolio", headers=h).get_json()
    assert D(summary["cash"]) == D("1000000") - D("10006.00") - D("35.49")
    check_invariants(app, o["account_id"])


def test_limit_rests_reserves_cash_modify_and_cancel(client, trader, market):
    _, h = trader
    r = client.post(URL, json=order_body(type="LIMIT", price="990.00", quantity=5), headers=h)
    assert r.status_code == 201
    o = r.get_json()
    assert o["status"] == "open" and D(o["reserved_cash"]) > D("4950")
    summary = client.get("/api/v1/portfolio", headers=h).get_json()
    assert D(summary["available_cash"]) == D(summary["cash"]) - D(o["reserved_cash"])

    r = client.patch(f"{URL}/{o['id']}", json={"price": "985.00", "quantity": 6}, headers=h)
    assert r.status_code == 200, r.get_json()
    assert D(r.get_json()["price"]) == D("985.00") and r.get_json()["quantity"] == 6

    r = client.delete(f"{URL}/{o['id']}", headers=h)
    assert r.status_code == 200 and r.get_json()["status"] == "cancelled"
    assert D(r.get_json()["reserved_cash"]) == 0
    assert client.delete(f"{URL}/{o['id']}", headers=h).status_code == 409
    assert client.patch(f"{URL}/{o['id']}", json={"price": "980.00"}, headers=h).status_code == 409


def test_marketable_limit_fills_at_touch_not_limit(client, trader, market):
    _, h = trader
    o = client.post(URL, json=order_body(type="LIMIT", price="1010.00", quantity=2), headers=h).get_json()
    assert o["status"] == "filled" and D(o["average_price"]) == D("1000.05")


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"type": "LIMIT"}, "price"),
        ({"side": "HOLD"}, "side"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": "ten"}, "quantity"),
        ({"type": "LIMIT", "price": "1000.03"}, "price"),
        ({"symbol": "NOPE"}, "symbol"),
        ({"type": "SL-M"}, "trigger_price"),
        ({"type": "SL-M", "side": "SELL", "trigger_price": "1005.00"}, "trigger_price"),
        ({"price": "abc", "type": "LIMIT"}, "price"),
        ({"client_order_id": "bad key!"}, "client_order_id"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_changes_nothing(client, trader, market, changes, field):
    _, h = trader
    r = client.post(URL, json=order_body(**changes), headers=h)
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["error"]["details"]["fields"]
    assert client.get(URL, headers=h).get_json()["items"] == []


def test_risk_rejection_lists_every_failed_check_and_is_stored(client, trader, market):
    _, h = trader
    # 2000 x ~1020 = 2.04M: above max_order_value (1M), max_position_value (2M) and cash (1M)
    r = client.post(URL, json=order_body(quantity=2000), headers=h)
    assert r.status_code == 422
    err = r.get_json()["error"]
    assert err["code"] == "RISK_REJECTED"
    names = {c["name"] for c in err["details"]["checks"]}
    assert {"max_order_value", "buying_power", "max_position"} <= names
    stored = client.get(URL, query_string={"status": "rejected"}, headers=h).get_json()["items"]
    assert len(stored) == 1 and stored[0]["id"] == err["details"]["order_id"]
    assert {c["name"] for c in stored[0]["reject_reasons"]} == names
    assert client.get("/api/v1/portfolio/positions", headers=h).get_json() == []


def test_fat_finger_collar(client, trader, market):
    _, h = trader
    r = client.post(URL, json=order_body(type="LIMIT", price="900.00"), headers=h)
    assert r.status_code == 422
    assert [c["name"] for c in r.get_json()["error"]["details"]["checks"]] == ["price_collar"]


def test_idempotent_retry_returns_original_and_conflict_on_other_body(client, trader, market):
    _, h = trader
    body = order_body(client_order_id="abc-1")
    first = client.post(URL, json=body, headers=h)
    again = client.post(URL, json=body, headers=h)
    assert first.status_code == again.status_code == 201
    assert first.get_json()["id"] == again.get_json()["id"]
    assert len(client.get(URL, headers=h).get_json()["items"]) == 1
    other = client.post(URL, json=order_body(client_order_id="abc-1", quantity=11), headers=h)
    assert other.status_code == 409 and other.get_json()["error"]["code"] == "IDEMPOTENCY_CONFLICT"


def test_idempotency_header_and_rejected_replay(client, trader, market):
    _, h = trader
    hk = {**h, "Idempotency-Key": "k-77"}
    first = client.post(URL, json=order_body(quantity=2000), headers=hk)
    again = client.post(URL, json=order_body(quantity=2000), headers=hk)
    assert first.status_code == again.status_code == 422
    assert (
        first.get_json()["error"]["details"]["order_id"] == again.get_json()["error"]["details"]["order_id"]
    )
    assert len(client.get(URL, headers=h).get_json()["items"]) == 1
    mismatch = client.post(URL, json=order_body(client_order_id="other"), headers=hk)
    assert (
        mismatch.status_code == 422 and "client_order_id" in mismatch.get_json()["error"]["details"]["fields"]
    )


def test_preview_changes_nothing(client, trader, market):
    _, h = trader
    r = client.post(f"{URL}/preview", json=order_body(quantity=10), headers=h)
    assert r.status_code == 200
    p = r.get_json()
    assert p["allowed"] is True and p["checks"] == []
    assert "buying_power" in p["checks_run"]
    # MARKET BUY priced at ltp + 2% collar = 1020 for the estimate
    assert D(p["charges"]["turnover"]) == D("10200.00")
    bad = client.post(f"{URL}/preview", json=order_body(quantity=2000), headers=h).get_json()
    assert bad["allowed"] is False and {c["name"] for c in bad["checks"]} >= {"buying_power"}
    assert client.get(URL, headers=h).get_json()["items"] == []
    assert D(client.get("/api/v1/portfolio", headers=h).get_json()["cash"]) == D("1000000")


def test_list_filters_and_pagination(client, trader, market):
    _, h = trader
    for sym in ("RELIANCE", "SBIN", "INFY"):
        assert client.post(URL, json=order_body(symbol=sym, quantity=1), headers=h).status_code == 201
    client.post(URL, json=order_body(type="LIMIT", price="990.00", quantity=1), headers=h)
    page = client.get(URL, query_string={"limit": 2}, headers=h).get_json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = client.get(URL, query_string={"limit": 2, "cursor": page["next_cursor"]}, headers=h).get_json()
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None
    assert [
        o["symbol"] for o in client.get(URL, query_string={"symbol": "sbin"}, headers=h).get_json()["items"]
    ] == ["SBIN"]
    opened = client.get(URL, query_string={"status": "open"}, headers=h).get_json()["items"]
    assert len(opened) == 1 and opened[0]["type"] == "LIMIT"
    assert client.get(URL, query_string={"status": "nope"}, headers=h).status_code == 422


def test_cancel_all_optionally_by_symbol(client, trader, market):
    _, h = trader
    client.post(URL, json=order_body(type="LIMIT", price="990.00", quantity=1), headers=h)
    client.post(URL, json=order_body(type="LIMIT", price="995.00", quantity=1), headers=h)
    client.post(URL, json=order_body(symbol="SBIN", type="LIMIT", price="795.00", quantity=1), headers=h)
    r = client.delete(URL, query_string={"symbol": "SBIN"}, headers=h)
    assert r.status_code == 200 and r.get_json()["cancelled"] == 1
    assert client.delete(URL, headers=h).get_json()["cancelled"] == 2
    assert client.get(URL, query_string={"status": "open"}, headers=h).get_json()["items"] == []


def test_other_users_orders_are_404(client, make_user, market):
    _, h1 = make_user()
    _, h2 = make_user()
    o = client.post(URL, json=order_body(type="LIMIT", price="990.00"), headers=h1).get_json()
    for method, path, kw in (
        ("get", f"{URL}/{o['id']}", {}),
        ("patch", f"{URL}/{o['id']}", {"json": {"price": "991.00"}}),
        ("delete", f"{URL}/{o['id']}", {}),
        ("get", f"{URL}/{o['id']}/trades", {}),
    ):
        r = getattr(client, method)(path, headers=h2, **kw)
        assert r.status_code == 404, (method, path)
    assert client.get(URL, headers=h2).get_json()["items"] == []
    acct = _acct(client, h1)
    r = client.post(URL, json=order_body(account_id=acct["id"]), headers=h2)
    assert r.status_code == 404
    assert client.delete(URL, query_string={"account_id": acct["id"]}, headers=h2).status_code == 404
    assert client.get(f"{URL}/{o['id']}", headers=h1).get_json()["status"] == "open"


def test_viewer_cannot_place(client, make_user, market):
    _, h = make_user("viewer")
    assert client.post(URL, json=order_body(), headers=h).status_code == 403


def test_stop_order_triggers_on_tick(client, trader, market, app):
    from backend.services.trading import orders

    _, h = trader
    o = client.post(
        URL, json=order_body(type="SL-M", side="BUY", trigger_price="1010.00", quantity=3), headers=h
    )
    assert o.status_code == 201 and o.get_json()["status"] == "trigger_pending"
    oid = o.get_json()["id"]
    with app.app_context():
        market.set("RELIANCE", "1005")
        orders.on_tick(market.as_tick("RELIANCE"))
    assert client.get(f"{URL}/{oid}", headers=h).get_json()["status"] == "trigger_pending"
    with app.app_context():
        market.set("RELIANCE", "1012")
        orders.on_tick(market.as_tick("RELIANCE"))
    got = client.get(f"{URL}/{oid}", headers=h).get_json()
    # ask 1012.05 slipped 5 bps = 1012.556 -> 1012.60
    assert got["status"] == "filled" and D(got["average_price"]) == D("1012.60")
    check_invariants(app, got["account_id"])


def test_events_are_emitted_after_commit(client, trader, market, events, app):
    from sqlalchemy import create_engine, text

    from backend.services.trading import common

    uid, h = trader
    seen_status = []
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    probe = create_engine(url)

    def emit(user_id, event, payload):
        if event == "order_update":
            # a separate connection sees the row only once the transaction has committed
            with probe.connect() as conn:
                row = conn.execute(
                    text("select status from orders where id = :i"), {"i": payload["id"]}
                ).first()
            seen_status.append(row[0] if row else None)
        events.append((user_id, event, payload))

    common.set_emitter(app, emit)
    o = client.post(URL, json=order_body(quantity=1), headers=h).get_json()
    probe.dispose()
    kinds = [e[1] for e in events]
    assert {"order_update", "fill", "position_update"} <= set(kinds)
    assert all(e[0] == uid for e in events)
    assert seen_status and seen_status[-1] == "filled" and None not in seen_status
    assert o["status"] == "filled"


def test_no_events_when_the_transaction_fails(client, trader, market, events, app, monkeypatch):
    from backend.services.trading import paper_broker

    _, h = trader
    client.get("/api/v1/portfolio", headers=h)

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(paper_broker, "account_fill", boom)
    r = client.post(URL, json=order_body(quantity=1), headers=h)
    assert r.status_code == 500
    assert events == []
    assert client.get(URL, headers=h).get_json()["items"] == []


def test_paper_account_never_reaches_live_broker(client, trader, market, app):
    from backend.extensions import db
    from backend.models.trading import TradingAccount
    from backend.services.trading import orders

    calls = []

    class LiveSpy:
        name = "live"

        def place_order(self, account, order):
            calls.append(("place", account))
            raise AssertionError("a live client was reached")

    def spy_factory(acct):
        calls.append(("resolve", acct.id))
        return LiveSpy()

    previous = orders.set_live_broker_factory(app, spy_factory)
    try:
        uid, h = trader
        assert client.post(URL, json=order_body(quantity=1), headers=h).status_code == 201
        o = client.post(URL, json=order_body(type="LIMIT", price="990.00"), headers=h).get_json()
        assert client.patch(f"{URL}/{o['id']}", json={"price": "991.00"}, headers=h).status_code == 200
        assert client.delete(f"{URL}/{o['id']}", headers=h).status_code == 200
        assert calls == []
        # the same resolver does hand a live account to the live factory
        with app.app_context():
            live = TradingAccount(user_id=uid, name="Upstox", mode="live", starting_cash=D(0), cash=D(0))
            db.session.add(live)
            db.session.commit()
            assert isinstance(orders.resolve_broker(live), LiveSpy)
        assert calls and calls[0][0] == "resolve"
    finally:
        orders.set_live_broker_factory(app, previous)


def test_order_rate_limit_per_user(client, make_user, market, app, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_ORDERS", "2 per minute")
    _, h1 = make_user()
    _, h2 = make_user()
    codes = [client.post(URL, json=order_body(quantity=1), headers=h1).status_code for _ in range(3)]
    assert codes == [201, 201, 429]
    assert client.post(URL, json=order_body(quantity=1), headers=h2).status_code == 201


def test_working_orders_hold_buying_power_from_the_next_order(client, trader, market, app):
    """The pre-trade snapshot counts cash held by resting orders (read with the positions, after the lock)."""
    _, h = trader
    for _ in range(2):  # 480 x 985 = 472,800 each (+ charges): two of them leave < 50,000 of 1,000,000
        r = client.post(URL, json=order_body(type="LIMIT", price="985.00", quantity=480), headers=h)
        assert r.status_code == 201 and r.get_json()["status"] == "open", r.get_json()
    resting = r.get_json()
    r = client.post(URL, json=order_body(quantity=60), headers=h)  # ~60,036: more than is left
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "RISK_REJECTED"
    assert [c["name"] for c in r.get_json()["error"]["details"]["checks"]] == ["buying_power"]
    assert client.delete(f"{URL}/{resting['id']}", headers=h).status_code == 200
    r = client.post(URL, json=order_body(quantity=60), headers=h)
    assert r.status_code == 201 and r.get_json()["status"] == "filled", r.get_json()
    check_invariants(app, r.get_json()["account_id"])


def test_working_order_queries_render_their_statuses_literally():
    """A bound status list would keep PostgreSQL's generic plans off the partial working-order index."""
    from sqlalchemy.dialects import postgresql, sqlite

    from backend.services.trading.accounts import reserved_cash_query

    for dialect in (postgresql.dialect(), sqlite.dialect()):
        sql = str(
            reserved_cash_query(7).compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        )
        assert "IN ('pending', 'open', 'trigger_pending', 'partially_filled')" in sql, sql
