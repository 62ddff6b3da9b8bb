"""Reading, modifying and cancelling orders, each modification or cancellation one locked transaction."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import select

from backend.domain.broker.base import OrderModification
from backend.domain.errors import (
    Conflict,
    NotFound,
)
from backend.extensions import db
from backend.models.trading import Order, Trade, TradingAccount, is_working
from backend.services.pagination import Page, keyset_page
from backend.services.trading.accounts import (
    resolve_account,
)
from backend.services.trading.common import (
    Events,
    lock_account,
)
from backend.services.trading.orders.brokers import resolve_broker
from backend.services.trading.orders.placement import broker_ref, coordinator, snapshot
from backend.services.trading.orders.prepare import (
    build_request,
    fields_error,
    instrument_for,
    quote_for,
    validate_request,
)


def owned_order(user: Any, order_id: int) -> Order:
    row = db.session.get(Order, order_id)
    if row is None or row.user_id != user.id:
        raise NotFound("Order not found.", {"order_id": order_id}, code="ORDER_NOT_FOUND")
    return row


def get_order(user: Any, order_id: int) -> Order:
    return owned_order(user, order_id)


def list_orders(user: Any, filters: dict[str, Any], limit: int, cursor: dict | None) -> Page:
    stmt = select(Order).where(Order.user_id == user.id)
    if filters.get("account_id") is not None:
        stmt = stmt.where(Order.account_id == filters["account_id"])
    if filters.get("status"):
        stmt = stmt.where(Order.status.in_(filters["status"]))
    if filters.get("symbol"):
        stmt = stmt.where(Order.symbol == filters["symbol"].upper())
    if filters.get("from_") is not None:
        stmt = stmt.where(Order.created_at >= filters["from_"])
    if filters.get("to") is not None:
        stmt = stmt.where(Order.created_at < filters["to"])
    return keyset_page(stmt, Order.id, limit, cursor)


def order_trades(user: Any, order_id: int) -> list[Trade]:
    row = owned_order(user, order_id)
    return list(db.session.scalars(select(Trade).where(Trade.order_id == row.id).order_by(Trade.id)))


def modify_order(user: Any, order_id: int, changes: dict[str, Any]) -> Order:
    """Change price, quantity or trigger of a working order; risk is re-checked for the new terms."""
    row = owned_order(user, order_id)
    events = Events()
    try:
        acct = lock_account(row.account_id)
        row = db.session.get(Order, order_id, populate_existing=True)
        if row.status not in ("open", "trigger_pending", "partially_filled"):
            raise Conflict(
                "Only a working order can be modified.", {"status": row.status}, code="ORDER_NOT_MODIFIABLE"
            )
        ins = instrument_for(row.symbol)
        new_qty = changes.get("quantity", row.quantity)
        if new_qty is not None and new_qty <= row.filled_quantity:
            raise fields_error(
                "Quantity too small.", {"quantity": f"Must exceed the filled {row.filled_quantity}."}
            )
        data = {
            "symbol": row.symbol,
            "side": row.side,
            "type": row.type,
            "product": row.product,
            "validity": row.validity,
            "quantity": new_qty,
            "price": changes.get("price", row.price),
            "trigger_price": changes.get("trigger_price", row.trigger_price),
        }
        full = build_request(data, row.client_order_id)
        quote = quote_for(ins.symbol)
        validate_request(full, ins, quote.ltp if row.status == "trigger_pending" else None)
        rest = replace(full, quantity=new_qty - row.filled_quantity)
        snap, limits = snapshot(acct, {ins.symbol: quote.ltp}, exclude_order=row)
        # a modification is not a new order for the day's order count
        snap = replace(
            snap, breaker=replace(snap.breaker, orders_today=max(snap.breaker.orders_today - 1, 0))
        )
        decision = coordinator().evaluate(rest, ins, quote.ltp, snap, limits)
        decision.raise_if_rejected()
        broker = resolve_broker(acct, {ins.symbol: quote}, events)
        broker.modify_order(
            str(acct.id),
            broker_ref(acct, row),
            OrderModification(quantity=new_qty, price=full.price, trigger_price=full.trigger_price),
        )
        row.reserved_cash = decision.cash_required
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    events.send()
    return row


def _cancel_locked(acct: TradingAccount, row: Order, events: Events) -> None:
    broker = resolve_broker(acct, None, events)
    broker.cancel_order(str(acct.id), broker_ref(acct, row))


def cancel_order(user: Any, order_id: int) -> Order:
    row = owned_order(user, order_id)
    events = Events()
    try:
        acct = lock_account(row.account_id)
        row = db.session.get(Order, order_id, populate_existing=True)
        _cancel_locked(acct, row, events)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    events.send()
    return row


def cancel_all(user: Any, account_id: int | None, symbol: str | None) -> list[Order]:
    acct = resolve_account(user, account_id)
    events = Events()
    try:
        acct = lock_account(acct.id)
        stmt = select(Order).where(Order.account_id == acct.id, is_working())
        if symbol:
            stmt = stmt.where(Order.symbol == symbol.upper())
        rows = list(db.session.scalars(stmt.order_by(Order.id).execution_options(populate_existing=True)))
        for row in rows:
            _cancel_locked(acct, row, events)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    events.send()
    return rows


# --------------------------------------------------------------------------- ticks
