"""The tick-driven matching engine: every tick fills the resting paper orders of its symbol, then checks
protective stops. One transaction per account, so one account's failure never stops the others."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from backend.extensions import db
from backend.models.trading import Order, Position, TradingAccount, is_working
from backend.services.trading.common import (
    Events,
    lock_account,
)
from backend.services.trading.orders.stops import check_stops_tick
from backend.services.trading.paper_broker import work_order

log = logging.getLogger(__name__)


def working_symbols() -> set[str]:
    rows = db.session.execute(select(Order.symbol).where(is_working()).distinct())
    syms = {r[0] for r in rows}
    syms |= {
        r[0]
        for r in db.session.execute(
            select(Position.symbol).where(Position.stops.is_not(None), Position.quantity != 0).distinct()
        )
    }
    return syms


def match_tick(tick: Any) -> int:
    """Fill resting paper orders of ``tick.symbol``; one transaction per account. Returns fills made."""
    symbol = tick.symbol.upper()
    account_ids = sorted(
        {
            r[0]
            for r in db.session.execute(
                select(Order.account_id)
                .join(TradingAccount, TradingAccount.id == Order.account_id)
                .where(Order.symbol == symbol, is_working(), TradingAccount.mode == "paper")
            )
        }
    )
    db.session.rollback()
    fills = 0
    for account_id in account_ids:
        events = Events()
        try:
            acct = lock_account(account_id)
            rows = db.session.scalars(
                select(Order)
                # a queued AMO waits for the open (orders.amo.release_amo_orders)
                .where(
                    Order.account_id == account_id, Order.symbol == symbol, is_working(), Order.amo.is_(False)
                )
                .order_by(Order.id)
                .execution_options(populate_existing=True)
            )
            for row in list(rows):
                before = row.filled_quantity
                work_order(acct, row, tick, events)
                fills += row.filled_quantity != before
            db.session.commit()
        except Exception:  # noqa: BLE001 - one account's failure must not stop the others
            db.session.rollback()
            log.exception("paper tick matching failed", extra={"account_id": account_id, "symbol": symbol})
            continue
        events.send()
    return fills


def on_tick(tick: Any) -> None:
    """Tick-bus callback: match resting orders, then protective stops."""
    match_tick(tick)
    check_stops_tick(tick)
