"""The I/O floor of an order, served by the real app: ``gunicorn benchmarks.floor_app:app``.

The app is ``create_app()`` with one extra route, ``POST /bench/floor-order``, that does the
input/output a paper MARKET BUY must do and nothing else:

* the same before/after-request hooks as any route (authentication with the JWT, the revocation
  check and the user row; security headers, access log, metrics);
* the same per-user Flask-Limiter limit as ``POST /orders`` (acquire, then the header statistics);
* the quote, as the order path reads it (the cache: one Redis MGET);
* in one transaction: the account row lock, positions + reserved cash, INSERT order, INSERT trade,
  INSERT of two ledger entries, UPDATE position, UPDATE account, COMMIT;
* the three events, as one Redis PUBLISH (``emit_batch``, as the order path sends them).

Statements go through SQLAlchemy Core with cached constructs; there is no ORM unit of work, no
Marshmallow, no risk coordinator, no charges model and no Decimal accounting beyond one product.
It answers a fixed JSON body. It is never part of the product: it exists so ``bench_orders.py`` can
say what share of ``/health/live``'s throughput any implementation of an order on this stack, with
this I/O, could reach on the same server.
"""

from __future__ import annotations

import functools
import os
from decimal import Decimal
from typing import Any

from flask import g, jsonify
from sqlalchemy import bindparam, insert, select, update

from backend import create_app
from backend.api.orders.routes import _orders_limit
from backend.extensions import db, limiter
from backend.models import LedgerEntry, Order, Position, Trade, TradingAccount
from backend.models.base import utcnow
from backend.realtime import emit_batch, emit_to_user
from backend.services.market_data import quotes
from backend.services.trading.accounts import reserved_cash_query

QTY = 1


@functools.cache
def _statements() -> dict[str, Any]:
    acct = TradingAccount.__table__
    pos = Position.__table__
    account = bindparam("account")
    return {
        "lock": select(acct.c.id, acct.c.cash)
        .where(acct.c.default_for_user == bindparam("user"))
        .with_for_update(),
        "positions": select(
            reserved_cash_query(account).scalar_subquery().label("reserved"),
            pos.c.id,
            pos.c.symbol,
            pos.c.quantity,
            pos.c.cost_basis,
        )
        .select_from(pos)
        .where(pos.c.account_id == account),
        "order": insert(Order.__table__).returning(Order.__table__.c.id),
        "trade": insert(Trade.__table__).returning(Trade.__table__.c.id),
        "ledger": insert(LedgerEntry.__table__),
        "position": update(pos).where(pos.c.id == bindparam("pid")),
        "account": update(acct).where(acct.c.id == bindparam("aid")),
    }


def _key() -> str:
    return f"floor-user:{g.user_id}"


def floor_order() -> Any:
    st = _statements()
    price = quotes(["RELIANCE"])[0].ask  # the cache (one MGET), the feed when the entry expired
    now = utcnow()
    conn = db.session.connection()
    acct = conn.execute(st["lock"], {"user": g.user_id}).one()
    rows = conn.execute(st["positions"], {"account": acct.id}).all()
    position = next(r for r in rows if r.symbol == "RELIANCE")
    charges = Decimal("0.02")
    order_id = conn.execute(
        st["order"],
        {
            "account_id": acct.id,
            "user_id": g.user_id,
            "symbol": "RELIANCE",
            "side": "BUY",
            "type": "MARKET",
            "product": "D",
            "validity": "DAY",
            "quantity": QTY,
            "filled_quantity": QTY,
            "average_price": price,
            "status": "filled",
            "status_message": "",
            "reject_reasons": [],
            "reserved_cash": Decimal(0),
            "estimated_charges": charges,
            "response_status": 201,
            "created_at": now,
            "updated_at": now,
        },
    ).scalar_one()
    trade_id = conn.execute(
        st["trade"],
        {
            "account_id": acct.id,
            "order_id": order_id,
            "symbol": "RELIANCE",
            "side": "BUY",
            "product": "D",
            "quantity": QTY,
            "price": price,
            "charges": charges,
            "realised_pnl": Decimal(0),
            "executed_at": now,
        },
    ).scalar_one()
    entries = [("fill", -price * QTY), ("charge", -charges)]
    conn.execute(
        st["ledger"],
        [
            {"account_id": acct.id, "order_id": order_id, "trade_id": trade_id, "created_at": now}
            | {"kind": kind, "amount": amount, "note": ""}
            for kind, amount in entries
        ],
    )
    conn.execute(
        st["position"],
        {"pid": position.id, "quantity": position.quantity + QTY, "cost_basis": position.cost_basis + price},
    )
    cash = acct.cash - price * QTY - charges
    conn.execute(st["account"], {"aid": acct.id, "cash": cash, "updated_at": now})
    db.session.commit()
    event = {"order_id": order_id, "trade_id": trade_id, "price": str(price), "status": "filled"}
    with emit_batch():  # as Events.send: one queue message that every worker unpacks
        for name in ("fill", "position_update", "order_update"):
            emit_to_user(g.user_id, name, event)
    return jsonify({"id": order_id, "status": "filled", "average_price": str(price)}), 201


def worker() -> Any:
    """The gunicorn worker that holds this connection: ``bench_orders.py`` spreads its clients'
    keep-alive connections evenly over the workers with it (see ``_balanced_sessions`` there)."""
    return jsonify({"pid": os.getpid()})


app = create_app()
app.add_url_rule("/bench/worker", "bench_worker", worker, methods=["GET"])
app.add_url_rule(
    "/bench/floor-order",
    "bench_floor_order",
    limiter.limit(_orders_limit, key_func=_key)(floor_order),  # POST /orders' own limit
    methods=["POST"],
)
