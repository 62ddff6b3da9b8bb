"""The Upstox portfolio stream feed applied to the local book, against the REST + websocket stubs."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from backend.domain.market.calendar import IST
from tests.api.test_broker import TOKEN, connect
from tests.services import trading_support
from tests.stubs.upstox_orders_stub import book_of
from tests.stubs.upstox_portfolio_ws_stub import PortfolioSocketServer, order_update, portfolio_blueprint
from tests.stubs.upstox_stub import StubState, create_stub_app
from tests.unit.broker.test_portfolio_feed_socket import wait_for

market = trading_support.market
events = trading_support.events

FAST = {
    "UPSTOX_PORTFOLIO_FEED_SILENCE_SECONDS": 0.6,
    "UPSTOX_PORTFOLIO_FEED_PING_SECONDS": 0.1,
    "UPSTOX_PORTFOLIO_FEED_TOKEN_CHECK_SECONDS": 0.05,
    "UPSTOX_PORTFOLIO_FEED_AUTH_RETRY_SECONDS": 0.3,
    "UPSTOX_PORTFOLIO_FEED_BACKOFF_INITIAL": 0.02,
    "UPSTOX_PORTFOLIO_FEED_BACKOFF_MAX": 0.1,
    "UPSTOX_PORTFOLIO_UPDATE_TYPES": "order,position,holding",
}


@pytest.fixture(autouse=True)
def _in_session(market_clock):
    market_clock(datetime(2026, 12, 3, 11, 0, tzinfo=IST), clock="always_open")


@pytest.fixture
def stub(app):
    """REST stub plus the portfolio websocket; the app pointed at both for this test."""
    from backend.services import broker as svc

    state = StubState()
    state.access_token = "nobody-yet"
    state.add("NSE_EQ|INE002A01018", "RELIANCE", ltp=1400.0, prev_close=1390.0)
    ws = PortfolioSocketServer()
    rest = create_stub_app(state)
    rest.register_blueprint(portfolio_blueprint(state, ws))
    server = make_server("127.0.0.1", 0, rest, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    book = book_of(state)
    base = f"http://127.0.0.1:{server.server_port}"
    overrides = {
        "UPSTOX_API_BASE_URL": base,
        "UPSTOX_ORDER_BASE_URL": base,
        "UPSTOX_CLIENT_ID": book.client_id,
        "UPSTOX_CLIENT_SECRET": book.client_secret,
        "UPSTOX_REDIRECT_URI": book.redirect_uri,
        "UPSTOX_RETRY_WAIT_INITIAL": 0.0,
        "UPSTOX_RETRY_WAIT_MAX": 0.0,
        "UPSTOX_RETRY_ATTEMPTS": 1,
        **FAST,
    }
    saved = {k: app.config.get(k) for k in overrides}
    app.config.update(overrides)
    svc.reset_runtime(app)
    try:
        yield state, ws
    finally:
        app.config.update(saved)
        svc.reset_runtime(app)
        server.shutdown()
        thread.join(timeout=5)
        ws.shutdown()


@pytest.fixture
def live(app, client, trader, stub, market, events):
    """A connected live account with its feed running: (account_id, headers, state, ws, feed)."""
    from backend.services import portfolio_feed

    state, ws = stub
    _, headers = trader
    _, _, cb = connect(client, headers, state)
    assert cb.status_code == 200, cb.get_json()
    account_id = cb.get_json()["account_id"]
    feed = portfolio_feed.build_feed(app, account_id)
    feed.start()
    try:
        wait_for(lambda: ws.open_count() == 1)
        yield account_id, headers, state, ws, feed
    finally:
        feed.stop()


def _place(client, headers, account_id, key):
    body = {"account_id": account_id, "symbol": "RELIANCE", "side": "BUY", "type": "LIMIT",
            "product": "D", "quantity": 2, "price": "990.00", "client_order_id": key}  # fmt: skip
    r = client.post("/api/v1/orders", json=body, headers=headers)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def _order(app, order_id):
    from backend.extensions import db
    from backend.models.trading import Order

    with app.app_context():
        row = db.session.get(Order, order_id)
        names = ("status", "filled_quantity", "average_price", "broker_status")
        return None if row is None else {c: getattr(row, c) for c in names}


def _count(app, model, **where):
    from backend.extensions import db

    with app.app_context():
        stmt = select(func.count()).select_from(model)
        for k, v in where.items():
            stmt = stmt.where(getattr(model, k) == v)
        return db.session.scalar(stmt)


def _fill_at_broker(state, broker_id, qty=2, price=990.0, trade_id="T-1"):
    """The broker fills the order: its book, its trades and its positions say so."""
    book = book_of(state)
    book.set_status(broker_id, "complete", filled=qty, avg=price)
    row = book.orders[broker_id]
    key = row["instrument_token"]
    book.trades.append({"trade_id": trade_id, "order_id": broker_id, "instrument_token": key,
                        "trading_symbol": "RELIANCE-EQ", "transaction_type": "BUY", "product": "D",
                        "quantity": qty, "average_price": price, "tag": row["tag"],
                        "exchange_timestamp": "2026-12-03 11:00:05"})  # fmt: skip
    book.positions.append({"instrument_token": row["instrument_token"], "trading_symbol": "RELIANCE-EQ",
                           "product": "D", "quantity": qty, "average_price": price, "realised": 0,
                           "unrealised": 0, "last_price": price})  # fmt: skip
    return row


def test_an_update_for_our_order_fills_it_with_one_trade_and_emits_events(app, client, live, events):
    from backend.models.trading import Trade

    account_id, headers, state, ws, feed = live
    placed = _place(client, headers, account_id, "feed-1")
    assert state.portfolio_update_types == "order,position,holding"
    events.clear()
    row = _fill_at_broker(state, placed["broker_order_id"])
    assert ws.push(order_update(row)) == 1
    wait_for(lambda: _order(app, placed["id"])["status"] == "filled")
    got = _order(app, placed["id"])
    assert got["filled_quantity"] == 2 and str(got["average_price"]).startswith("990")
    assert got["broker_status"] == "complete"
    wait_for(lambda: any(ev == "position_update" for _, ev, _ in events))
    kinds = [ev for _, ev, _ in events]
    assert kinds.count("order_update") == 1 and kinds.count("fill") == 1
    fill = next(p for _, ev, p in events if ev == "fill")
    assert fill["order_id"] == placed["id"] and fill["quantity"] == 2 and fill["price"].startswith("990")
    pos = next(p for _, ev, p in events if ev == "position_update")
    assert pos["symbol"] == "RELIANCE" and pos["product"] == "D" and pos["quantity"] == 2
    assert _count(app, Trade, order_id=placed["id"]) == 1

    # the same update again (Upstox resends, or a reconnect replays): nothing changes, nothing emitted
    events.clear()
    ws.push(order_update(row))
    other = book_of(state).add_order(tag=None, status="open", quantity=1)  # a sentinel after it
    ws.push(order_update(other))
    wait_for(lambda: feed.stats.messages == 3 and any(ev == "order_update" for _, ev, _ in events))
    # only the sentinel moved: no order_update or fill for the duplicate
    assert not [p for _, ev, p in events if ev == "fill" or p.get("id") == placed["id"]]
    assert _count(app, Trade, order_id=placed["id"]) == 1
    # and the order page shows it filled
    seen = client.get(f"/api/v1/orders/{placed['id']}", headers=headers).get_json()
    assert seen["status"] == "filled" and seen["filled_quantity"] == 2


def test_an_order_placed_in_the_upstox_app_appears_locally(app, client, live, events):
    from backend.extensions import db
    from backend.models.trading import Order

    account_id, headers, state, ws, feed = live
    events.clear()
    # placed in the Upstox app: we never saw it, and it carries no tag of ours
    row = book_of(state).add_order(tag=None, status="open", quantity=5, order_type="LIMIT", price=1001.5,
                                   transaction_type="SELL", product="I")  # fmt: skip
    ws.push(order_update(row))
    wait_for(lambda: any(ev == "order_update" for _, ev, _ in events))
    with app.app_context():
        local = db.session.scalar(select(Order).where(Order.broker_order_id == row["order_id"]))
        assert local is not None and local.account_id == account_id
        assert (local.status, local.side, local.product, local.quantity) == ("open", "SELL", "I", 5)
        assert local.client_order_id is None  # not ours: no idempotency key
    listed = client.get(f"/api/v1/orders?account_id={account_id}", headers=headers).get_json()
    assert row["order_id"] in [o.get("broker_order_id") for o in listed["items"]]
    # the app cancels it later: the same local row follows, through the state machine
    events.clear()
    ws.push(order_update(row, status="cancelled"))
    wait_for(lambda: any(ev == "order_update" for _, ev, _ in events))
    with app.app_context():
        rows = db.session.scalars(select(Order).where(Order.broker_order_id == row["order_id"])).all()
        assert [r.status for r in rows] == ["cancelled"]


def test_an_unknown_status_and_product_map_to_other(app, client, live, events):
    from backend.extensions import db
    from backend.models.trading import Order

    _, _, state, ws, _ = live
    row = book_of(state).add_order(tag=None, status="open", product="MTF")
    ws.push(order_update(row, status="awaiting exchange confirmation"))
    wait_for(lambda: any(ev == "order_update" for _, ev, _ in events))
    with app.app_context():
        local = db.session.scalar(select(Order).where(Order.broker_order_id == row["order_id"]))
        assert (local.status, local.product, local.broker_product) == ("other", "other", "MTF")
        assert local.broker_status == "awaiting exchange confirmation"


def test_malformed_messages_are_counted_and_the_feed_keeps_applying(app, client, live, events):
    account_id, headers, state, ws, feed = live
    placed = _place(client, headers, account_id, "feed-2")
    ws.push("{not json")
    ws.push({"update_type": "order", "status": "complete"})  # no order id
    row = _fill_at_broker(state, placed["broker_order_id"], trade_id="T-2")
    ws.push(order_update(row))
    wait_for(lambda: _order(app, placed["id"])["status"] == "filled")
    assert feed.stats.malformed == 2 and feed.stats.handler_errors == 0


def test_disconnect_reconnects_and_updates_flow_again(app, client, live, events):
    account_id, headers, state, ws, feed = live
    placed = _place(client, headers, account_id, "feed-3")
    ws.drop_all()
    wait_for(lambda: feed.stats.reconnects == 1 and ws.open_count() == 1)
    row = _fill_at_broker(state, placed["broker_order_id"], trade_id="T-3")
    ws.push(order_update(row))
    wait_for(lambda: _order(app, placed["id"])["status"] == "filled")


def test_token_expiry_then_a_fresh_login_reauthorizes_the_feed(app, client, trader, live, events):
    from backend.extensions import token_store
    from backend.services.broker import BROKER

    account_id, headers, state, ws, feed = live
    user_id, _ = trader
    # 03:30 IST: the token is gone from the store and Upstox refuses it and ends the session
    with app.app_context():
        token_store.delete(BROKER, user_id, account_id)
    state.access_token = "expired-nobody-has-it"
    ws.close_all()
    wait_for(lambda: feed.stats.state == "auth_wait")
    authorizations = feed.stats.authorizations
    # the user logs in again: a new token in the store; the feed re-authorizes with it on its own
    _, _, cb = connect(client, headers, state, code="code-2", token=TOKEN + "-new")
    assert cb.status_code == 200, cb.get_json()
    wait_for(lambda: ws.open_count() == 1 and feed.stats.authorizations > authorizations)
    auth_calls = state.calls("/v2/feed/portfolio-stream-feed/authorize")
    assert auth_calls[-1].headers["Authorization"] == f"Bearer {TOKEN}-new"
    placed = _place(client, headers, account_id, "feed-4")
    row = _fill_at_broker(state, placed["broker_order_id"], trade_id="T-4")
    ws.push(order_update(row))
    wait_for(lambda: _order(app, placed["id"])["status"] == "filled")


def test_one_process_runs_each_accounts_feed(app, client, trader, stub, market):
    from backend.extensions import redis_store
    from backend.services.portfolio_feed import FeedManager

    state, ws = stub
    _, headers = trader
    _, _, cb = connect(client, headers, state)
    account_id = cb.get_json()["account_id"]
    a, b = FeedManager(app), FeedManager(app)  # two workers of one deployment
    try:
        got_a, got_b = a.sync(), b.sync()
        if redis_store.client is None:
            # no Redis: nothing is shared, each process runs its own (docs/brokers.md says so)
            assert list(got_a) == [account_id] and list(got_b) == [account_id]
        else:
            assert list(got_a) == [account_id] and got_b == {}  # the claim is held by the first
            assert b.sync() == {}  # and stays held while the first renews it
            a.stop()  # the first worker goes away and frees its claim
            assert list(b.sync()) == [account_id]
        wait_for(lambda: ws.open_count() >= 1)
        from backend.services.broker import broker_status

        with app.app_context():
            app.extensions["portfolio_feeds"] = b
            try:
                assert str(account_id) in broker_status(app)["portfolio_feeds"]
            finally:
                app.extensions.pop("portfolio_feeds")
    finally:
        a.stop()
        b.stop()


def test_trades_unreadable_keeps_the_new_status_and_reconciliation_adds_the_fill(app, client, live, events):
    from backend.models.trading import Trade
    from tests.stubs.upstox_stub import SERVER_ERROR

    account_id, headers, state, ws, feed = live
    placed = _place(client, headers, account_id, "feed-5")
    row = _fill_at_broker(state, placed["broker_order_id"], trade_id="T-5")
    state.fail_next(SERVER_ERROR)  # the feed's read of the day's trades fails
    ws.push(order_update(row))
    wait_for(lambda: _order(app, placed["id"])["status"] == "filled")
    assert _count(app, Trade, order_id=placed["id"]) == 0 and feed.stats.handler_errors == 0
    r = client.post("/api/v1/broker/reconcile", json={"account_id": account_id}, headers=headers)
    assert r.status_code == 200, r.get_json()
    assert _count(app, Trade, order_id=placed["id"]) == 1  # recorded once, by its broker trade id
