"""Portfolio API: summary, positions (batched quotes), accounts, reset, close, stops, risk, sizing."""

from __future__ import annotations

from decimal import Decimal

from tests.services import trading_support
from tests.services.trading_support import check_invariants, order_body

D = Decimal
events = trading_support.events  # shared fixture
market = trading_support.market  # shared fixture
P = "/api/v1/portfolio"


def _buy(client, h, **kw):
    r = client.post("/api/v1/orders", json=order_body(**kw), headers=h)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_default_account_created_lazily_with_starting_cash(client, trader, market):
    _, h = trader
    accts = client.get(f"{P}/accounts", headers=h).get_json()
    assert len(accts) == 1 and accts[0]["is_default"] and D(accts[0]["cash"]) == D("1000000")
    assert len(client.get(f"{P}/accounts", headers=h).get_json()) == 1


def test_summary_and_positions_priced_with_one_batched_call(client, trader, market, app):
    _, h = trader
    _buy(client, h, symbol="RELIANCE", quantity=10)
    _buy(client, h, symbol="SBIN", quantity=5)
    _buy(client, h, symbol="INFY", quantity=2)
    market.set("RELIANCE", "1100")
    market.quote_calls.clear()
    positions = client.get(f"{P}/positions", headers=h).get_json()
    assert len(market.quote_calls) == 1 and sorted(market.quote_calls[0]) == ["INFY", "RELIANCE", "SBIN"]
    rel = next(p for p in positions if p["symbol"] == "RELIANCE")
    assert D(rel["ltp"]) == D("1100") and rel["quantity"] == 10
    assert D(rel["unrealised_pnl"]) == D("11000") - D("10006.00")
    s = client.get(P, headers=h).get_json()
    assert D(s["equity"]) == D(s["cash"]) + D("11000") + 5 * D("800") + 2 * D("1500")
    assert D(s["unrealised_pnl"]) == sum(D(p["unrealised_pnl"]) for p in positions)
    holdings = client.get(f"{P}/holdings", headers=h).get_json()
    assert {x["symbol"] for x in holdings} == {"RELIANCE", "SBIN", "INFY"}
    trades = client.get(f"{P}/trades", headers=h).get_json()
    assert len(trades["items"]) == 3


def test_round_trip_realised_pnl_and_close(client, trader, market, app):
    _, h = trader
    o = _buy(client, h, quantity=10)
    market.set("RELIANCE", "1100")
    r = client.post(f"{P}/positions/RELIANCE/close", headers=h)
    assert r.status_code == 201 and r.get_json()["tag"] == "close" and r.get_json()["side"] == "SELL"
    # sell at bid 1099.95 less 5 bps = 1099.400025 -> rounded down to 1099.40
    sell = r.get_json()
    assert D(sell["average_price"]) == D("1099.40")
    assert client.get(f"{P}/positions", headers=h).get_json() == []
    s = client.get(P, headers=h).get_json()
    assert D(s["realised_pnl"]) == (D("1099.40") - D("1000.60")) * 10
    assert client.post(f"{P}/positions/RELIANCE/close", headers=h).status_code == 404
    check_invariants(app, o["account_id"])


def test_close_all(client, trader, market, app):
    _, h = trader
    o = _buy(client, h, symbol="RELIANCE", quantity=3)
    _buy(client, h, symbol="SBIN", quantity=4)
    r = client.post(f"{P}/positions/close-all", headers=h)
    assert r.status_code == 200 and len(r.get_json()["orders"]) == 2
    assert client.get(f"{P}/positions", headers=h).get_json() == []
    check_invariants(app, o["account_id"])


def test_accounts_create_rename_default_and_validation(client, trader, market):
    _, h = trader
    r = client.post(f"{P}/accounts", json={"name": "Swing", "starting_cash": "50000"}, headers=h)
    assert r.status_code == 201 and D(r.get_json()["cash"]) == D("50000") and not r.get_json()["is_default"]
    aid = r.get_json()["id"]
    r = client.patch(f"{P}/accounts/{aid}", json={"name": "Swing 2", "is_default": True}, headers=h)
    assert r.status_code == 200 and r.get_json()["is_default"] and r.get_json()["name"] == "Swing 2"
    assert sum(a["is_default"] for a in client.get(f"{P}/accounts", headers=h).get_json()) == 1
    o = _buy(client, h, quantity=1)
    assert o["account_id"] == aid
    bad = client.post(f"{P}/accounts", json={"name": "", "starting_cash": "-5"}, headers=h)
    assert bad.status_code == 422 and {"name", "starting_cash"} <= set(
        bad.get_json()["error"]["details"]["fields"]
    )


def test_reset_needs_confirmation_and_is_audited(client, trader, market, app):
    _, h = trader
    o = _buy(client, h, quantity=10)
    aid = o["account_id"]
    r = client.post(f"{P}/accounts/{aid}/reset", json={"confirm": "yes"}, headers=h)
    assert r.status_code == 422 and "confirm" in r.get_json()["error"]["details"]["fields"]
    assert client.get(f"{P}/positions", headers=h).get_json() != []
    r = client.post(
        f"{P}/accounts/{aid}/reset", json={"confirm": "RESET", "starting_cash": "25000"}, headers=h
    )
    assert r.status_code == 200 and D(r.get_json()["cash"]) == D("25000")
    assert client.get(f"{P}/positions", headers=h).get_json() == []
    assert client.get("/api/v1/orders", headers=h).get_json()["items"] == []
    check_invariants(app, aid)
    with app.app_context():
        from sqlalchemy import select

        from backend.extensions import db
        from backend.models import AuditLog

        actions = list(db.session.scalars(select(AuditLog.action)))
        assert "trading.account_reset" in actions


def test_stops_fire_a_tagged_market_exit_on_tick(client, trader, market, app):
    from backend.services.trading import orders

    _, h = trader
    o = _buy(client, h, quantity=10)
    r = client.put(
        f"{P}/positions/RELIANCE/stops", json={"stop_loss": "950", "take_profit": "1100"}, headers=h
    )
    assert r.status_code == 200 and r.get_json()["stops"]["stop_loss"] == "950"
    bad = client.put(f"{P}/positions/RELIANCE/stops", json={"stop_loss": "1200"}, headers=h)
    assert bad.status_code == 422 and "stop_loss" in bad.get_json()["error"]["details"]["fields"]
    with app.app_context():
        market.set("RELIANCE", "960")
        orders.on_tick(market.as_tick("RELIANCE"))
        assert client.get(f"{P}/positions", headers=h).get_json()[0]["quantity"] == 10
        market.set("RELIANCE", "949")
        orders.on_tick(market.as_tick("RELIANCE"))
    assert client.get(f"{P}/positions", headers=h).get_json() == []
    exits = client.get("/api/v1/orders", query_string={"status": "filled"}, headers=h).get_json()["items"]
    assert exits[0]["tag"] == "stop_loss" and exits[0]["side"] == "SELL"
    check_invariants(app, o["account_id"])


def test_risk_tighten_loosen_and_kill_switch(client, trader, admin, market):
    _, h = trader
    aid = client.get(f"{P}/accounts", headers=h).get_json()[0]["id"]
    r = client.get(f"{P}/accounts/{aid}/risk", headers=h)
    assert r.status_code == 200 and r.get_json()["trading_state"] == "ACTIVE"
    r = client.patch(f"{P}/accounts/{aid}/risk", json={"overrides": {"max_order_value": "5000"}}, headers=h)
    assert r.status_code == 200 and r.get_json()["limits"]["max_order_value"] == "5000"
    rej = client.post("/api/v1/orders", json=order_body(quantity=10), headers=h)
    assert [c["name"] for c in rej.get_json()["error"]["details"]["checks"]] == ["max_order_value"]
    loosen = client.patch(
        f"{P}/accounts/{aid}/risk", json={"overrides": {"max_order_value": "5000000"}}, headers=h
    )
    assert loosen.status_code == 403
    bad = client.patch(f"{P}/accounts/{aid}/risk", json={"overrides": {"max_order_value": "lots"}}, headers=h)
    assert bad.status_code == 422
    r = client.post(f"{P}/accounts/{aid}/kill-switch", json={"on": True, "reason": "tilt"}, headers=h)
    assert r.status_code == 200 and r.get_json()["trading_state"] == "HALTED"
    rej = client.post("/api/v1/orders", json=order_body(quantity=1), headers=h)
    assert (
        rej.status_code == 422 and rej.get_json()["error"]["details"]["checks"][0]["name"] == "trading_state"
    )
    client.post(f"{P}/accounts/{aid}/kill-switch", json={"on": False}, headers=h)
    assert client.post("/api/v1/orders", json=order_body(quantity=1), headers=h).status_code == 201


def test_global_kill_switch_halts_everyone(client, trader, admin, market, app):
    from backend.services.trading.risk import get_global_kill_switch, set_global_kill_switch

    _, h = trader
    with app.app_context():
        from backend.extensions import db
        from backend.models import User

        actor = db.session.get(User, admin[0])
        set_global_kill_switch(actor, True, "exchange outage")
        assert get_global_kill_switch() is True
    rej = client.post("/api/v1/orders", json=order_body(quantity=1), headers=h)
    assert (
        rej.status_code == 422 and "global kill" in rej.get_json()["error"]["details"]["checks"][0]["reason"]
    )
    with app.app_context():
        set_global_kill_switch(db.session.get(User, admin[0]), False)
        assert get_global_kill_switch() is False
    assert client.post("/api/v1/orders", json=order_body(quantity=1), headers=h).status_code == 201


def test_suggest_quantity(client, trader, market):
    _, h = trader
    r = client.get(f"{P}/suggest-quantity", query_string={"symbol": "RELIANCE"}, headers=h)
    # equity 1,000,000 x 20% = 200,000 / 1000 -> 200
    assert r.status_code == 200 and r.get_json()["quantity"] == 200 and r.get_json()["binding"] == "value"
    r = client.get(
        f"{P}/suggest-quantity", query_string={"symbol": "RELIANCE", "stop_price": "900"}, headers=h
    )
    # 1% risk = 10,000 / (1000 - 900) -> 100
    assert r.get_json()["quantity"] == 100 and r.get_json()["binding"] == "risk"
    bad = client.get(
        f"{P}/suggest-quantity", query_string={"symbol": "RELIANCE", "stop_price": "1000"}, headers=h
    )
    assert bad.status_code == 422 and "stop_price" in bad.get_json()["error"]["details"]["fields"]
    assert client.get(f"{P}/suggest-quantity", headers=h).status_code == 422


def test_other_users_accounts_and_positions_are_404(client, make_user, market):
    _, h1 = make_user()
    _, h2 = make_user()
    _buy(client, h1, quantity=1)
    aid = client.get(f"{P}/accounts", headers=h1).get_json()[0]["id"]
    q = {"account_id": aid}
    checks = [
        ("get", f"{P}/accounts/{aid}", {}),
        ("patch", f"{P}/accounts/{aid}", {"json": {"name": "mine"}}),
        ("post", f"{P}/accounts/{aid}/reset", {"json": {"confirm": "RESET"}}),
        ("get", f"{P}/accounts/{aid}/risk", {}),
        ("patch", f"{P}/accounts/{aid}/risk", {"json": {"overrides": {"max_order_value": "1"}}}),
        ("post", f"{P}/accounts/{aid}/kill-switch", {"json": {"on": True}}),
        ("get", P, {"query_string": q}),
        ("get", f"{P}/positions", {"query_string": q}),
        ("get", f"{P}/holdings", {"query_string": q}),
        ("get", f"{P}/trades", {"query_string": q}),
        ("post", f"{P}/positions/RELIANCE/close", {"query_string": q}),
        ("post", f"{P}/positions/close-all", {"query_string": q}),
        ("put", f"{P}/positions/RELIANCE/stops", {"query_string": q, "json": {"stop_loss": "1"}}),
        ("get", f"{P}/suggest-quantity", {"query_string": {**q, "symbol": "SBIN"}}),
    ]
    for method, path, kw in checks:
        r = getattr(client, method)(path, headers=h2, **kw)
        assert r.status_code == 404, (method, path, r.get_json())
    assert client.get(f"{P}/positions", headers=h1).get_json()[0]["quantity"] == 1
    assert client.get(f"{P}/accounts/{aid}/risk", headers=h1).get_json()["trading_state"] == "ACTIVE"
