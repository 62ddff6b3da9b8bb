"""Protective stops: trailing water marks and stop-loss / take-profit exits fired from ticks.

A stop is never lost. When one fires, its exit is placed as a MARKET order tagged with the rule
(``stop_loss``, ``trailing_stop``, ``take_profit``); the stop is cleared only in the transaction that
accepts that exit. If the exit is refused, the stop stays on the position, the refusal is sent to the
user (``stop_exit_rejected``) and written to the audit log, and the exit is tried again on a later tick
(at most once per ``STOP_RETRY_SECONDS``, so a refusal does not repeat on every tick).

Closing a position, by hand, by a stop or by the intraday square-off, replaces the position's own
working exit orders (its stop and take-profit orders: the working orders of the same symbol and product
on the closing side): they are cancelled when the exit is accepted, in the same transaction.
"""

from __future__ import annotations

import logging
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from backend.domain.errors import DomainError, RiskRejected
from backend.domain.market.types import Quote
from backend.domain.risk.stops import ProtectedPosition
from backend.extensions import db
from backend.models.trading import Order, Position, TradingAccount, is_working
from backend.services import audit
from backend.services.trading.common import Events, lock_account
from backend.services.trading.orders.placement import place_locked
from backend.services.trading.orders.prepare import instrument_for

log = logging.getLogger(__name__)

# A refused stop exit is retried on a later tick, but not more often than this: each attempt stores a
# rejected order, an audit row and an event, which should not repeat on every tick.
STOP_RETRY_SECONDS = 60
_PP_FIELDS = {f.name for f in fields(ProtectedPosition)}


class SystemUser:
    def __init__(self, user_id: int) -> None:
        self.id = user_id
        self.role = "system"


def exit_orders(acct: TradingAccount, symbol: str, product: str, position_qty: int) -> list[Order]:
    """The position's own working exit orders: same symbol and product, on the closing side."""
    side = "SELL" if position_qty > 0 else "BUY"
    return list(
        db.session.scalars(
            select(Order)
            .where(
                Order.account_id == acct.id,
                Order.symbol == symbol,
                Order.product == product,
                Order.side == side,
                is_working(),
            )
            .order_by(Order.id)
            .execution_options(populate_existing=True)
        )
    )


def clear_stops(acct: TradingAccount, symbol: str, product: str) -> None:
    """Drop the stops of a position whose exit was accepted (runs in the exit's transaction)."""
    pos = db.session.scalar(
        select(Position).where(
            Position.account_id == acct.id, Position.symbol == symbol, Position.product == product
        )
    )
    if pos is not None:
        pos.stops = None


def place_exit(
    user: Any, account_id: int, req: Any, ins: Any, quote: Quote, position_qty: int
) -> tuple[Order, int]:
    """Place an exit of a position: its working exit orders are cancelled and its stops cleared only
    if the exit is accepted (one transaction). Raises RiskRejected (the exit stored as rejected)."""

    def replaced(acct: TradingAccount) -> list[Order]:
        return exit_orders(acct, req.symbol, str(req.product), position_qty)

    def accepted(acct: TradingAccount, row: Order) -> None:
        clear_stops(acct, req.symbol, str(req.product))

    return place_locked(
        user, account_id, req, ins, quote, None, None, cancel_on_accept=replaced, on_accept=accepted
    )


def _protected(stops: dict[str, Any], qty: int, product: str) -> ProtectedPosition:
    known = {k: v for k, v in stops.items() if k in _PP_FIELDS}
    return ProtectedPosition.from_dict({**known, "qty": qty, "product": product})


def _retry_due(stops: dict[str, Any], now: datetime) -> bool:
    refused = (stops.get("exit_refused") or {}).get("at")
    return refused is None or now - datetime.fromisoformat(refused) >= timedelta(seconds=STOP_RETRY_SECONDS)


def _quote_of(symbol: str, tick: Any) -> Quote:
    px = Decimal(tick.ltp)
    return Quote(
        symbol,
        px,
        Decimal(tick.bid),
        Decimal(tick.ask),
        px,
        px,
        px,
        px,
        int(tick.volume or 0),
        tick.ts if isinstance(tick.ts, datetime) else datetime.now(UTC),
    )


def _record_refusal(position_id: int, exc: DomainError, reason: str) -> None:
    """The stop stays; the refusal becomes a user event and an audit row (one transaction)."""
    now = datetime.now(UTC)
    events = Events()
    try:
        pos = db.session.get(Position, position_id)
        acct = lock_account(pos.account_id)
        pos = db.session.get(Position, position_id, populate_existing=True)
        order_id = exc.details.get("order_id")
        if pos.stops:
            pos.stops = {**pos.stops, "exit_refused": {"at": now.isoformat(), "order_id": order_id}}
        payload = {
            "account_id": acct.id,
            "symbol": pos.symbol,
            "product": pos.product,
            "quantity": pos.quantity,
            "rule": reason,
            "order_id": order_id,
            "code": exc.code,
            "message": exc.message,
            "checks": exc.details.get("checks", []),
            "stop_kept": bool(pos.stops),
        }
        audit.record(
            "trading.stop_exit_rejected",
            actor_id=acct.user_id,
            target_type="position",
            target_id=pos.id,
            details=payload,
        )
        events.add(acct.user_id, "stop_exit_rejected", payload)
        db.session.commit()
    except Exception:  # noqa: BLE001
        db.session.rollback()
        log.exception("recording a refused stop exit failed", extra={"position_id": position_id})
        return
    events.send()


def check_stops_tick(tick: Any) -> int:
    """Move trailing water marks and fire stop-loss/take-profit exits as tagged MARKET orders."""
    symbol = tick.symbol.upper()
    position_ids = [
        r[0]
        for r in db.session.execute(
            select(Position.id)
            .where(Position.symbol == symbol, Position.stops.is_not(None), Position.quantity != 0)
            .order_by(Position.account_id, Position.id)
        )
    ]
    db.session.rollback()
    exits = 0
    now = datetime.now(UTC)
    for position_id in position_ids:
        try:
            pos = db.session.get(Position, position_id)
            if pos is None:
                db.session.rollback()
                continue
            acct = lock_account(pos.account_id)
            pos = db.session.get(Position, position_id, populate_existing=True)
            if pos is None or not pos.stops or pos.quantity == 0:
                db.session.commit()
                continue
            pp, exit_req = check_stops_fire(pos, Decimal(tick.ltp))
            extra = {k: v for k, v in pos.stops.items() if k not in _PP_FIELDS}
            pos.stops = {**pp.to_dict(), **extra}  # the water mark moves; the stop itself stays
            due = exit_req is not None and _retry_due(pos.stops, now)
            user_id, account_id, qty = acct.user_id, acct.id, pos.quantity
            db.session.commit()
        except Exception:  # noqa: BLE001
            db.session.rollback()
            log.exception("stop check failed", extra={"position_id": position_id, "symbol": symbol})
            continue
        if not due:
            continue
        try:
            ins = instrument_for(symbol)
            place_exit(SystemUser(user_id), account_id, exit_req, ins, _quote_of(symbol, tick), qty)
            exits += 1
        except DomainError as exc:  # refused by risk, the session or the broker: the stop stays
            exits += isinstance(exc, RiskRejected)  # a refused exit is still stored, with its reasons
            db.session.rollback()
            _record_refusal(position_id, exc, exit_req.tag or "stop")
        except Exception:  # noqa: BLE001
            db.session.rollback()
            log.exception("stop exit failed", extra={"account_id": account_id, "symbol": symbol})
    return exits


def check_stops_fire(pos: Position, ltp: Decimal) -> tuple[ProtectedPosition, Any]:
    """The position's protected state with the new water mark, and its exit order if a rule fires."""
    from backend.domain.risk.stops import check_stops

    return check_stops(_protected(pos.stops or {}, pos.quantity, pos.product), ltp)
