"""After-market orders (AMO): LIMIT and SL orders accepted outside the session with ``amo: true``.

A paper AMO is recorded ``pending`` with ``amo`` set: it holds its cash like any working order, can
be cancelled, and is not worked by the tick matcher. At its segment's next open the scheduler
releases it (``release_amo_orders``): the flag clears and the paper broker works it against the
opening quote, as a broker sends queued AMOs to the exchange at the open. A live account's AMO goes
to the broker at once with ``is_amo`` and the broker queues it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from backend.domain.orders.types import OrderType
from backend.extensions import db
from backend.models.trading import WORKING_STATUSES, Order, TradingAccount, is_working
from backend.services.trading.common import Events, lock_account

log = logging.getLogger(__name__)


def segment_of(symbol: str) -> str:
    from backend.services import market_data

    ins = market_data.find_instrument(symbol)
    return ins.segment if ins is not None else "NSE_EQ"


def queue_amo(row: Order, events: Events | None = None) -> None:
    """Record ``row`` as queued for its segment's next open (the caller has checked the session)."""
    from backend.services import market_calendar

    opens = market_calendar.calendar().next_open(market_calendar.now(), segment_of(row.symbol))
    row.status_message = f"amo: queued for the open at {opens:%Y-%m-%d %H:%M} IST"
    if events is not None:
        events.order(row)


def release_amo_orders(segment: str | None = None, now: datetime | None = None) -> int:
    """Work every queued paper AMO of ``segment`` (None: every segment) whose session is open at
    ``now``; one transaction per order. Returns the number released."""
    from backend.services import market_calendar
    from backend.services.trading.paper_broker import PaperBroker

    now = now or market_calendar.now()
    cal = market_calendar.calendar()
    ids = list(
        db.session.execute(
            select(Order.id, Order.symbol)
            .join(TradingAccount, TradingAccount.id == Order.account_id)
            .where(Order.amo.is_(True), is_working(), TradingAccount.mode == "paper")
            .order_by(Order.id)
        )
    )
    db.session.rollback()
    released = 0
    for order_id, symbol in ids:
        seg = segment_of(symbol)
        if (segment is not None and seg != segment) or not cal.is_open(now, seg):
            continue
        events = Events()
        try:
            row = db.session.get(Order, order_id)
            acct = lock_account(row.account_id)
            row = db.session.get(Order, order_id, populate_existing=True)
            if row.amo and row.status in WORKING_STATUSES:
                row.amo = False
                row.status_message = "amo: released at the open"
                broker = PaperBroker(events=events)
                broker.place_recorded(acct, row, OrderType(row.type) in (OrderType.SL, OrderType.SL_M))
                events.order(row)
                released += 1
            db.session.commit()
        except Exception:  # noqa: BLE001 - one order's failure must not hold back the others
            db.session.rollback()
            log.exception("amo release failed", extra={"order_id": order_id})
            continue
        events.send()
    return released
