"""Upstox connection through the API against the local stub: OAuth, connections, reconciliation."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import inspect, select, text
from werkzeug.serving import make_server

from backend.domain.market.calendar import IST
from tests.services import trading_support
from tests.services.trading_support import order_body
from tests.stubs.upstox_orders_stub import book_of
from tests.stubs.upstox_stub import SERVER_ERROR, StubState, create_stub_app

TOKEN = "upstox-ACCESS-token-Zq81-do-not-leak"
market = trading_support.market  # shared fixture (simulated quotes for paper fills)


@pytest.fixture
def upstox(app):
    """The stub on an ephemeral port, and the app configured to use it for this test."""
    from backend.services import broker as svc

    state = StubState()
    state.access_token = "nobody-yet"
    state.add("NSE_EQ|INE002A01018", "RELIANCE", ltp=1400.0, prev_close=1390.0)
    state.add("NSE_EQ|INE467B01029", "TCS", ltp=3450.0, prev_close=3440.0)
    server = make_server("127.0.0.1", 0, create_stub_app(state), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    book = book_of(state)
    overrides = {
        "UPSTOX_API_BASE_URL": f"http://127.0.0.1:{server.server_port}",
        "UPSTOX_ORDER_BASE_URL": f"http://127.0.0.1:{server.server_port}",
        "UPSTOX_CLIENT_ID": book.client_id,
        "UPSTOX_CLIENT_SECRET": book.client_secret,
        "UPSTOX_REDIRECT_URI": book.redirect_uri,
        "UPSTOX_RETRY_WAIT_INITIAL": 0.0,
        "UPSTOX_RETRY_WAIT_MAX": 0.0,
        "UPSTOX_BREAKER_FAIL_MAX": 3,
    }
    saved = {k: app.config.get(k) for k in overrides}
    app.config.update(overrides)
    svc.reset_runtime(app)
    try:
        yield state
    finally:
        app.config.update(saved)
        svc.reset_runtime(app)
        server.shutdown()
        thread.join(timeout=5)


def connect(client, headers, state, code="code-1", token=TOKEN):
    book_of(state).issue_code(code, token)
    r = client.get("/api/v1/broker/upstox/authorize", headers=headers)
    assert r.status_code == 200, r.get_json()
    st = parse_qs(urlparse(r.get_json()["authorization_url"]).query)["state"][0]
    # the browser comes back without our Authorization header
    cb = client.get(f"/api/v1/broker/upstox/callback?code={code}&state={st}")
    return r, st, cb


def test_authorize_url_carries_config_credentials_and_a_fresh_state(client, trader, upstox):
    _, headers = trader
    r1 = client.get("/api/v1/broker/upstox/authorize", headers=headers)
    r2 = client.get("/api/v1/broker/upstox/authorize", headers=headers)
    url = urlparse(r1.get_json()["authorization_url"])
    q = parse_qs(url.query)
    assert url.path == "/v2/login/authorization/dialog"
    assert q["response_type"] == ["code"] and q["client_id"] == ["stub-client"]
    assert q["redirect_uri"] == ["http://localhost/api/v1/broker/upstox/callback"]
    assert len(q["state"][0]) >= 40 and r1.get_json()["state"] != r2.get_json()["state"]


def test_authorize_needs_our_auth(client, upstox):
    assert client.get("/api/v1/broker/upstox/authorize").status_code == 401


def test_authorize_without_config_is_503(client, trader, app):
    _, headers = trader
    r = client.get("/api/v1/broker/upstox/authorize", headers=headers)
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "BROKER_NOT_CONFIGURED"


def test_oauth_round_trip_creates_live_account_and_stores_encrypted_token(client, trader, upstox, app):
    user_id, headers = trader
    _, _, cb = connect(client, headers, upstox)
    assert cb.status_code == 200, cb.get_json()
    body = cb.get_json()
    assert (
        body["status"] == "active" and body["token_status"] == "valid" and body["broker_user_id"] == "AB1234"
    )
    # the exchange was form-encoded with the configured credentials
    req = book_of(upstox).token_requests[0]
    assert req["content_type"] == "application/x-www-form-urlencoded" and req["code"] == "code-1"
    assert req["client_secret"] == "stub-secret" and req["grant_type"] == "authorization_code"
    # expiry: the next 03:30 in Asia/Kolkata
    exp = datetime.fromisoformat(body["token_expires_at"]).astimezone(IST)
    assert (exp.hour, exp.minute) == (3, 30)
    assert timedelta(0) < exp - datetime.now(UTC) <= timedelta(hours=24)
    with app.app_context():
        from backend.extensions import db, token_store
        from backend.models.trading import TradingAccount

        acct = db.session.get(TradingAccount, body["account_id"])
        assert acct.mode == "live" and acct.user_id == user_id
        assert token_store.get("upstox", user_id, acct.id).token == TOKEN
        # no table holds the plaintext token
        for table in inspect(db.session.connection()).get_table_names():
            rows = db.session.execute(text(f"SELECT * FROM {table}")).all()
            assert TOKEN not in repr(rows), table
        actions = [r[0] for r in db.session.execute(text("SELECT action FROM audit_log")).all()]
        assert "broker.connect" in actions
    listed = client.get("/api/v1/broker/connections", headers=headers).get_json()["items"]
    assert [c["id"] for c in listed] == [body["id"]] and listed[0]["token_status"] == "valid"


def test_state_is_single_use(client, trader, upstox):
    _, headers = trader
    _, st, cb = connect(client, headers, upstox)
    assert cb.status_code == 200
    book_of(upstox).issue_code("code-2", "other-token")
    again = client.get(f"/api/v1/broker/upstox/callback?code=code-2&state={st}")
    assert again.status_code == 401 and again.get_json()["error"]["code"] == "OAUTH_STATE_INVALID"
    assert len(book_of(upstox).token_requests) == 1  # Upstox never asked


def test_wrong_state_is_refused_before_upstox(client, trader, upstox):
    _, headers = trader
    book_of(upstox).issue_code("code-1", TOKEN)
    client.get("/api/v1/broker/upstox/authorize", headers=headers)
    r = client.get("/api/v1/broker/upstox/callback?code=code-1&state=forged-state-value")
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "OAUTH_STATE_INVALID"
    assert book_of(upstox).token_requests == []


def test_state_of_another_user_is_refused_when_authenticated(client, make_user, upstox):
    _, alice = make_user()
    _, bob = make_user()
    book_of(upstox).issue_code("code-1", TOKEN)
    url = client.get("/api/v1/broker/upstox/authorize", headers=alice).get_json()["authorization_url"]
    st = parse_qs(urlparse(url).query)["state"][0]
    r = client.get(f"/api/v1/broker/upstox/callback?code=code-1&state={st}", headers=bob)
    assert r.status_code == 401 and book_of(upstox).token_requests == []


def test_reused_code_is_a_clear_error(client, trader, upstox):
    _, headers = trader
    _, _, first = connect(client, headers, upstox)
    assert first.status_code == 200
    r = client.get("/api/v1/broker/upstox/authorize", headers=headers)
    st = parse_qs(urlparse(r.get_json()["authorization_url"]).query)["state"][0]
    again = client.get(f"/api/v1/broker/upstox/callback?code=code-1&state={st}")
    err = again.get_json()["error"]
    assert again.status_code == 422 and err["code"] == "BROKER_AUTH_FAILED"
    assert "Invalid Auth code" in err["message"]


def test_callback_bad_input_is_422(client, upstox):
    r = client.get("/api/v1/broker/upstox/callback?state=abc")
    assert r.status_code == 422 and "code" in r.get_json()["error"]["details"]["fields"]


def test_open_circuit_is_503_broker_unavailable_and_shows_in_readiness(client, trader, upstox, app):
    from backend.services import broker as svc

    _, headers = trader
    with app.app_context():
        svc.live_broker(app).breaker.open()
    ready = client.get("/health/ready").get_json()
    assert ready["components"]["broker"]["circuit"] == "open"
    _, _, cb = connect(client, headers, upstox)
    assert cb.status_code == 503 and cb.get_json()["error"]["code"] == "BROKER_UNAVAILABLE"
    assert book_of(upstox).token_requests == []
    with app.app_context():
        assert svc.broker_status(app)["circuit"]["state"] == "open"


def test_revoke_deletes_token_and_is_owner_only(client, make_user, upstox, app):
    uid, headers = make_user()
    _, other = make_user()
    _, _, cb = connect(client, headers, upstox)
    conn = cb.get_json()
    assert client.delete(f"/api/v1/broker/connections/{conn['id']}", headers=other).status_code == 404
    assert client.delete(f"/api/v1/broker/connections/{conn['id']}", headers=headers).status_code == 204
    (listed,) = client.get("/api/v1/broker/connections", headers=headers).get_json()["items"]
    assert listed["status"] == "revoked" and listed["token_status"] == "revoked" and listed["revoked_at"]
    with app.app_context():
        from backend.extensions import token_store

        assert token_store.raw("upstox", uid, conn["account_id"]) is None
    # reconciling the revoked account reports the re-login, it does not crash
    rep = client.post("/api/v1/broker/reconcile", json={}, headers=headers).get_json()
    assert rep["errors"][0]["code"] == "BROKER_TOKEN_EXPIRED"


def test_paper_account_never_reaches_upstox(client, trader, upstox, app, market):
    from backend.domain.errors import Conflict
    from backend.services import broker as svc
    from backend.services.trading import orders as trading_orders

    _, headers = trader
    with app.app_context():
        assert trading_orders.live_broker_factory() is svc.broker_for_account  # live accounts come to us
    placed = client.post("/api/v1/orders", json=order_body(), headers=headers)
    assert placed.status_code == 201, placed.get_json()
    paper_id = placed.get_json()["account_id"]
    with app.app_context():
        from backend.extensions import db
        from backend.models.trading import TradingAccount

        paper = db.session.get(TradingAccount, paper_id)
        assert paper.mode == "paper"
        with pytest.raises(Conflict) as e:
            svc.broker_for_account(paper)
        assert e.value.code == "NOT_A_LIVE_ACCOUNT"
    r = client.post("/api/v1/broker/reconcile", json={}, headers=headers)
    assert r.status_code == 200 and r.get_json() == {"accounts": [], "differences": [], "errors": []}
    r = client.post("/api/v1/broker/reconcile", json={"account_id": paper_id}, headers=headers)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "NOT_A_LIVE_ACCOUNT"
    assert upstox.requests == []  # not one call reached the Upstox stub


def test_reconciliation_fixes_our_view_and_audits_each_difference(client, trader, upstox, app):
    uid, headers = trader
    _, _, cb = connect(client, headers, upstox)
    acct_id = cb.get_json()["account_id"]
    book = book_of(upstox)
    filled = book.add_order(
        quantity=10,
        filled_quantity=10,
        average_price=1401.05,
        status="complete",
        tag="cid-1",
        instrument_token="NSE_EQ|INE002A01018",
    )
    unknown = book.add_order(
        quantity=5,
        status="trigger pending",
        order_type="SL-M",
        trigger_price=3400.0,
        transaction_type="SELL",
        instrument_token="NSE_EQ|INE467B01029",
        tag=None,
    )
    book.positions.append(
        {
            "exchange": "NSE",
            "product": "D",
            "instrument_token": "NSE_EQ|INE002A01018",
            "trading_symbol": "RELIANCE-EQ",
            "quantity": 10,
            "average_price": 1401.05,
            "last_price": 1400.0,
            "realised": 0,
            "unrealised": -10.5,
        }
    )
    with app.app_context():
        from backend.extensions import db
        from backend.models.trading import Order, Position

        db.session.add(
            Order(
                account_id=acct_id,
                user_id=uid,
                client_order_id="cid-1",
                symbol="RELIANCE",
                side="BUY",
                type="MARKET",
                product="D",
                validity="DAY",
                quantity=10,
                status="open",
                reject_reasons=[],
            )
        )
        db.session.add(
            Position(account_id=acct_id, symbol="INFY", product="D", quantity=3, cost_basis=Decimal("4500"))
        )
        db.session.commit()
    r = client.post("/api/v1/broker/reconcile", json={"account_id": acct_id}, headers=headers)
    assert r.status_code == 200, r.get_json()
    rep = r.get_json()
    diffs = {
        (d["kind"], d["key"], d["field"]): (d["ours"], d["broker"], d["action"]) for d in rep["differences"]
    }
    assert diffs == {
        ("order", filled["order_id"], "broker_order_id"): (None, filled["order_id"], "updated"),
        ("order", filled["order_id"], "status"): ("open", "filled", "updated"),
        ("order", filled["order_id"], "filled_quantity"): ("0", "10", "updated"),
        ("order", filled["order_id"], "average_price"): (None, "1401.05", "updated"),
        ("order", unknown["order_id"], "*"): (None, "trigger_pending", "created"),
        ("position", "RELIANCE", "quantity"): (None, "10", "created"),
        ("position", "INFY", "quantity"): ("3", "0", "closed"),
    }
    with app.app_context():
        from backend.extensions import db
        from backend.models.trading import Order, Position

        o = db.session.scalar(select(Order).where(Order.client_order_id == "cid-1"))
        assert (o.status, o.filled_quantity, o.average_price, o.broker_order_id) == (
            "filled",
            10,
            Decimal("1401.05"),
            filled["order_id"],
        )
        created = db.session.scalar(select(Order).where(Order.broker_order_id == unknown["order_id"]))
        assert (created.symbol, created.side, created.status) == ("TCS", "SELL", "trigger_pending")
        pos = {p.symbol: (p.quantity, p.cost_basis) for p in db.session.scalars(select(Position))}
        assert pos == {"RELIANCE": (10, Decimal("14010.5")), "INFY": (0, Decimal(0))}
        audited = db.session.execute(
            text("SELECT count(*) FROM audit_log WHERE action = 'broker.reconcile_difference'")
        ).scalar()
        assert audited == len(rep["differences"]) == 7
    # a second run finds nothing left to fix
    again = client.post("/api/v1/broker/reconcile", json={"account_id": acct_id}, headers=headers).get_json()
    assert again["differences"] == [] and again["accounts"] == [acct_id]


def test_reconcile_survives_5xx_bursts_and_reports(client, trader, upstox):
    _, headers = trader
    connect(client, headers, upstox)
    upstox.fail_next(SERVER_ERROR, times=3)
    rep = client.post("/api/v1/broker/reconcile", json={}, headers=headers).get_json()
    assert rep["errors"][0]["code"] == "BROKER_UNAVAILABLE"


def test_expired_session_gives_relogin_hint(client, trader, upstox, app):
    uid, headers = trader
    _, _, cb = connect(client, headers, upstox)
    upstox.access_token = "rolled-over-at-0330"  # Upstox invalidated the token
    rep = client.post("/api/v1/broker/reconcile", json={}, headers=headers).get_json()
    assert rep["errors"][0]["code"] == "BROKER_TOKEN_EXPIRED"
    assert "log in to Upstox again" in rep["errors"][0]["message"]


def test_no_plaintext_token_in_logs(client, trader, upstox, caplog):
    caplog.set_level(logging.DEBUG)
    _, headers = trader
    _, _, cb = connect(client, headers, upstox)
    assert cb.status_code == 200
    client.get("/api/v1/broker/connections", headers=headers)
    client.post("/api/v1/broker/reconcile", json={}, headers=headers)
    upstox.access_token = "expired"
    client.post("/api/v1/broker/reconcile", json={}, headers=headers)
    assert caplog.records  # something was logged (stub, access log, token store...)
    assert TOKEN not in caplog.text
    for rec in caplog.records:
        assert TOKEN not in repr(rec.__dict__)


def test_market_data_hooks_use_the_stored_token_and_the_breaker(client, trader, upstox, app, make_user):
    from backend.domain.errors import BrokerTokenExpired
    from backend.domain.market.instruments import InstrumentRegistry, seed_instruments
    from backend.domain.market.upstox_provider import UpstoxProvider
    from backend.services import broker as svc

    _, headers = trader
    _, _, cb = connect(client, headers, upstox)
    # no shared connection designated and no request: nobody's token is borrowed
    with app.app_context(), pytest.raises(BrokerTokenExpired):
        svc.market_data_token_provider(app)()
    _, admin_headers = make_user("admin")
    r = client.put(
        "/api/v1/broker/market-data-connection",
        json={"connection_id": cb.get_json()["id"]},
        headers=admin_headers,
    )
    assert r.status_code == 200 and r.get_json()["market_data_feed"] is True, r.get_json()
    # a trader may not designate one
    denied = client.put("/api/v1/broker/market-data-connection", json={"connection_id": 1}, headers=headers)
    assert denied.status_code == 403
    bad = client.put(
        "/api/v1/broker/market-data-connection", json={"connection_id": "x"}, headers=admin_headers
    )
    assert bad.status_code == 422 and "connection_id" in bad.get_json()["error"]["details"]["fields"]
    with app.app_context():
        provider = UpstoxProvider(
            token_provider=svc.market_data_token_provider(app),
            instruments=InstrumentRegistry(seed_instruments()),
            base_url=app.config["UPSTOX_API_BASE_URL"],
            call_wrapper=svc.market_data_call_wrapper(app),
        )
        assert provider.ltp(["RELIANCE"]) == {"RELIANCE": Decimal("1400")}
    call = upstox.calls("/v3/market-quote/ltp")[0]
    assert call.headers["Authorization"] == f"Bearer {TOKEN}"


def test_market_data_failures_count_in_the_broker_circuit_and_are_retried(client, trader, upstox, app):
    from backend.domain.errors import BrokerUnavailable
    from backend.domain.market.instruments import InstrumentRegistry, seed_instruments
    from backend.domain.market.upstox_provider import UpstoxProvider
    from backend.services import broker as svc

    app.config["UPSTOX_ACCESS_TOKEN"] = TOKEN  # the explicit operator override
    upstox.access_token = TOKEN
    try:
        with app.app_context():
            provider = UpstoxProvider(
                token_provider=svc.market_data_token_provider(app),
                instruments=InstrumentRegistry(seed_instruments()),
                base_url=app.config["UPSTOX_API_BASE_URL"],
                call_wrapper=svc.market_data_call_wrapper(app),
            )
            upstox.fail_next(SERVER_ERROR, times=2)
            assert provider.ltp(["RELIANCE"]) == {"RELIANCE": Decimal("1400")}  # retried through 2 x 5xx
            assert len(upstox.calls("/v3/market-quote/ltp")) == 3
            upstox.fail_next(SERVER_ERROR, times=9)
            with pytest.raises(BrokerUnavailable):
                provider.ltp(["RELIANCE"])
            assert svc.live_broker(app).circuit_state()["state"] == "open"  # one breaker with orders
            sent = len(upstox.requests)
            with pytest.raises(BrokerUnavailable):
                provider.ltp(["RELIANCE"])
            assert len(upstox.requests) == sent  # failed fast
    finally:
        app.config["UPSTOX_ACCESS_TOKEN"] = None
        upstox.forced.clear()
