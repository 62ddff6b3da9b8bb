"""End of session: working DAY orders expire at their segment's close (NSE_EQ 15:30; NSE_FO
15:40 from 3 Aug 2026), per the exchange calendar. A queued AMO is not expired: it has not been
live yet, and goes live at the next open."""

from __future__ import annotations

import logging

from sqlalchemy import select

from backend.domain.orders.types import OrderStatus
from backend.extensions import db
from backend.models.trading import WORKING_STATUSES, Order, is_working
from backend.services.trading.common import (
    Events,
    lock_account,
)
from backend.services.trading.paper_broker import set_status

log = logging.getLogger(__name__)


def expire_day_orders(segment: str | None = None) -> int:
    """Expire every working DAY order of ``segment`` (None: every segment); run at its close."""
    from backend.services.trading.orders.amo import segment_of

    n = 0
    rows = list(
        db.session.execute(
            select(Order.id, Order.symbol).where(is_working(), Order.validity == "DAY", Order.amo.is_(False))
        )
    )
    db.session.rollback()
    segments: dict[str, str] = {}
    for order_id, symbol in rows:
        if segment is not None:
            seg = segments.get(symbol) or segments.setdefault(symbol, segment_of(symbol))
            if seg != segment:
                continue
        events = Events()
        try:
            row = db.session.get(Order, order_id)
            lock_account(row.account_id)
            row = db.session.get(Order, order_id, populate_existing=True)
            if row.status in WORKING_STATUSES and not row.amo:
                set_status(row, OrderStatus.EXPIRED, "session_close")
                events.order(row)
                n += 1
            db.session.commit()
        except Exception:  # noqa: BLE001
            db.session.rollback()
            log.exception("expiry failed", extra={"order_id": order_id})
            continue
        events.send()
    return n
