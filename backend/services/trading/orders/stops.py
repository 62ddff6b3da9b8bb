"""Protective stops: trailing water marks and stop-loss / take-profit exits fired from ticks."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from backend.domain.errors import (
    RiskRejected,
)
from backend.domain.market.types import Quote
from backend.extensions import db
from backend.models.trading import Position
from backend.services.trading.common import (
    lock_account,
)
from backend.services.trading.orders.placement import place_locked
from backend.services.trading.orders.prepare import instrument_for

log = logging.getLogger(__name__)


def check_stops_tick(tick: Any) -> int:
    """Move trailing water marks and fire stop-loss/take-profit exits as tagged MARKET orders."""
    from backend.domain.risk.stops import ProtectedPosition, check_stops

    symbol = tick.symbol.upper()
    account_ids = sorted(
        {
            r[0]
            for r in db.session.execute(
                select(Position.account_id).where(
                    Position.symbol == symbol, Position.stops.is_not(None), Position.quantity != 0
                )
            )
        }
    )
    db.session.rollback()
    exits = 0
    for account_id in account_ids:
        try:
            acct = lock_account(account_id)
            pos = db.session.scalar(
                select(Position)
                .where(Position.account_id == account_id, Position.symbol == symbol)
                .execution_options(populate_existing=True)
            )
            if pos is None or not pos.stops or pos.quantity == 0:
                db.session.commit()
                continue
            pp = ProtectedPosition.from_dict({**pos.stops, "qty": pos.quantity})
            pp, exit_req = check_stops(pp, Decimal(tick.ltp))
            if exit_req is None:
                pos.stops = pp.to_dict()
                db.session.commit()
                continue
            pos.stops = None
            user_id = acct.user_id
            db.session.commit()
        except Exception:  # noqa: BLE001
            db.session.rollback()
            log.exception("stop check failed", extra={"account_id": account_id, "symbol": symbol})
            continue
        try:
            ins = instrument_for(symbol)
            quote = Quote(
                symbol,
                Decimal(tick.ltp),
                Decimal(tick.bid),
                Decimal(tick.ask),
                Decimal(tick.ltp),
                Decimal(tick.ltp),
                Decimal(tick.ltp),
                Decimal(tick.ltp),
                int(tick.volume or 0),
                tick.ts if isinstance(tick.ts, datetime) else datetime.now(UTC),
            )
            place_locked(SystemUser(user_id), account_id, exit_req, ins, quote, None, None)
            exits += 1
        except RiskRejected:
            exits += 1  # stored as rejected with its reasons; the trader sees why
        except Exception:  # noqa: BLE001
            db.session.rollback()
            log.exception("stop exit failed", extra={"account_id": account_id, "symbol": symbol})
    return exits


class SystemUser:
    def __init__(self, user_id: int) -> None:
        self.id = user_id
        self.role = "system"
