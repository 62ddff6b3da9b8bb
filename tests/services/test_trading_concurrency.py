"""Concurrency (issue §4): many concurrent BUYs never overspend; cancel vs fill has exactly one winner."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select

from backend.domain.market.types import Tick
from tests.services import trading_support
from tests.services.trading_support import check_invariants, order_body

D = Decimal
market = trading_support.market  # shared fixture


def test_200_concurrent_buys_never_exceed_cash(app, client, trader, market, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_ORDERS", "100000 per minute")
    _, h = trader
    r = client.post("/api/v1/portfolio/accounts", json={"name": "small", "starting_cash": "10000"}, headers=h)
    aid = r.get_json()["id"]

    def place(i: int) -> int:
        c = app.test_client()
        if i % 2:
            body = order_body(account_id=aid, symbol="SBIN", quantity=1)  # fills at once
        else:
            body = order_body(
                account_id=aid, symbol="SBIN", type="LIMIT", price="790.00", quantity=1
            )  # rests
        return c.post("/api/v1/orders", json=body, headers=h).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(place, range(200)))
    assert 500 not in codes and set(codes) <= {201, 422}
    accepted = codes.count(201)
    assert 0 < accepted < 200

    from backend.extensions import db
    from backend.models.trading import Order, Trade, TradingAccount

    with app.app_context():
        trades = list(db.session.scalars(select(Trade).where(Trade.account_id == aid)))
        spent = sum((t.quantity * D(t.price) + D(t.charges) for t in trades), D(0))
        working = list(
            db.session.scalars(select(Order).where(Order.account_id == aid, Order.status == "open"))
        )
        reserved = sum((D(o.reserved_cash) for o in working), D(0))
        acct = db.session.get(TradingAccount, aid)
        assert spent + reserved <= D("10000")
        assert D(acct.cash) == D("10000") - spent and D(acct.cash) >= 0
        n_orders = db.session.scalar(
            select(db.func.count()).select_from(Order).where(Order.account_id == aid)
        )
        assert n_orders == 200  # rejected orders are stored too
        db.session.remove()
    check_invariants(app, aid)


def test_cancel_and_fill_race_has_exactly_one_winner(app, client, trader, market):
    from backend.extensions import db
    from backend.models.trading import Order, Trade
    from backend.services.trading import orders

    _, h = trader
    tick = Tick("RELIANCE", D("985"), D("984.95"), D("985.00"), 1000, datetime.now(UTC))
    outcomes = []
    for _ in range(8):
        o = client.post(
            "/api/v1/orders", json=order_body(type="LIMIT", price="990.00", quantity=2), headers=h
        )
        oid = o.get_json()["id"]
        barrier = threading.Barrier(2)
        result = {}

        def cancel() -> None:
            c = app.test_client()
            barrier.wait()
            result["cancel"] = c.delete(f"/api/v1/orders/{oid}", headers=h).status_code

        def fill() -> None:
            with app.app_context():
                barrier.wait()
                result["fills"] = orders.match_tick(tick)
                db.session.remove()

        threads = [threading.Thread(target=cancel), threading.Thread(target=fill)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with app.app_context():
            row = db.session.get(Order, oid)
            n_trades = db.session.scalar(
                select(db.func.count()).select_from(Trade).where(Trade.order_id == oid)
            )
            if row.status == "filled":
                assert result["cancel"] == 409 and n_trades == 1 and result["fills"] >= 1
            else:
                assert row.status == "cancelled" and result["cancel"] == 200 and n_trades == 0
            outcomes.append(row.status)
            db.session.remove()
    assert set(outcomes) <= {"filled", "cancelled"}
    check_invariants(app, client.get("/api/v1/portfolio/accounts", headers=h).get_json()[0]["id"])
