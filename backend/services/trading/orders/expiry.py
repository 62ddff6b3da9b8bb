"""End of session: working DAY orders expire."""

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


def expire_day_orders() -> int:
    """Expire every working DAY order (run at session close)."""
    n = 0
    rows = list(
        db.session.scalars(
            select(
                Order.id,
            ).where(is_working(), Order.validity == "DAY")
        )
    )
    db.session.rollback()
    for order_id in rows:
        events = Events()
        try:
            row = db.session.get(Order, order_id)
            lock_account(row.account_id)
            row = db.session.get(Order, order_id, populate_existing=True)
            if row.status in WORKING_STATUSES:
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
