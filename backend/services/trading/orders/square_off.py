"""Intraday auto square-off of paper accounts: no intraday (I) position survives the session.

At the segment's time (``square_off`` in config/trading.yaml) every paper account's working intraday
orders of that segment are cancelled, then each open I position is closed with a MARKET order tagged
``square_off`` (as brokers do: pending intraday orders are cancelled before the square-off orders go
out, and those are market orders). Traders get ``square_off_warning`` before and ``square_off_done``
after (Socket.IO). The session-close tasks run it once more for every segment, so a position opened
or left open after the square-off time is closed before the day ends.

Live accounts are squared off by the broker itself; reconciliation brings its result in.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import yaml
from flask import current_app
from sqlalchemy import select

from backend.domain.errors import DomainError
from backend.domain.orders.square_off import SquareOffConfig, parse_square_off
from backend.domain.orders.types import OrderRequest, OrderType, Product, Side, Validity
from backend.extensions import db
from backend.models.trading import Order, Position, TradingAccount, is_working
from backend.services.trading.common import Events, charge_segment, lock_account, trading_day
from backend.services.trading.orders.brokers import resolve_broker
from backend.services.trading.orders.prepare import instrument_for, quote_for
from backend.services.trading.orders.stops import SystemUser, place_exit

log = logging.getLogger(__name__)
TAG = "square_off"


def square_off_config() -> SquareOffConfig:
    """The ``square_off`` section of ``TRADING_CONFIG``, parsed once per app."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    cfg = app.extensions.get("square_off_config")
    if cfg is None:
        with open(app.config["TRADING_CONFIG"], encoding="utf-8") as fh:
            cfg = parse_square_off((yaml.safe_load(fh) or {}).get("square_off"))
        app.extensions["square_off_config"] = cfg
    return cfg


def _segment_of(symbol: str, cache: dict[str, str | None]) -> str | None:
    if symbol not in cache:
        from backend.services import market_data

        ins = market_data.find_instrument(symbol)
        cache[symbol] = None if ins is None else charge_segment(ins.segment)
    return cache[symbol]


def _open_intraday(segment: str | None) -> dict[int, list[tuple[int, str, int]]]:
    """Paper accounts' open I positions in ``segment`` (None: every segment), by account:
    (position id, symbol, quantity)."""
    rows = db.session.execute(
        select(Position.account_id, Position.id, Position.symbol, Position.quantity)
        .join(TradingAccount, TradingAccount.id == Position.account_id)
        .where(Position.product == "I", Position.quantity != 0, TradingAccount.mode == "paper")
        .order_by(Position.account_id, Position.id)
    ).all()
    seg_cache: dict[str, str | None] = {}
    out: dict[int, list[tuple[int, str, int]]] = defaultdict(list)
    for account_id, pid, symbol, qty in rows:
        if segment is None or _segment_of(symbol, seg_cache) == segment:
            out[account_id].append((pid, symbol, qty))
    db.session.rollback()
    return out


def warn(segment: str) -> int:
    """Tell every trader with open intraday positions in ``segment`` when they will be squared off."""
    at = square_off_config().at(segment, trading_day())
    held = _open_intraday(segment)
    if not held:
        return 0
    users = {
        account_id: user_id
        for account_id, user_id in db.session.execute(
            select(TradingAccount.id, TradingAccount.user_id).where(TradingAccount.id.in_(list(held)))
        )
    }
    db.session.rollback()
    events = Events()
    for account_id, positions in held.items():
        events.add(
            users[account_id],
            "square_off_warning",
            {
                "account_id": account_id,
                "segment": segment,
                "at": at.isoformat() if at else None,
                "positions": [{"symbol": s, "product": "I", "quantity": q} for _, s, q in positions],
            },
        )
    events.send()
    return len(held)


def _cancel_intraday_orders(
    account_id: int, segment: str | None, seg_cache: dict[str, str | None]
) -> list[int]:
    """Cancel the account's working intraday orders of ``segment`` (one transaction)."""
    events = Events()
    try:
        acct = lock_account(account_id)
        rows = list(
            db.session.scalars(
                select(Order)
                .where(Order.account_id == account_id, Order.product == "I", is_working())
                .order_by(Order.id)
                .execution_options(populate_existing=True)
            )
        )
        broker = resolve_broker(acct, None, events)
        cancelled = []
        for row in rows:
            if segment is None or _segment_of(row.symbol, seg_cache) == segment:
                broker.cancel_order(str(acct.id), str(row.id))
                cancelled.append(row.id)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    events.send()
    return cancelled


def square_off(segment: str | None = None) -> dict[str, int]:
    """Square off every paper account's open intraday positions in ``segment`` (None: all)."""
    held = _open_intraday(segment)
    seg_cache: dict[str, str | None] = {}
    totals = {"accounts": len(held), "positions": 0, "orders": 0, "failed": 0, "cancelled": 0}
    for account_id, positions in held.items():
        acct = db.session.get(TradingAccount, account_id)
        user_id = acct.user_id
        db.session.rollback()
        done: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        try:
            totals["cancelled"] += len(_cancel_intraday_orders(account_id, segment, seg_cache))
        except Exception:  # noqa: BLE001 - still try the exits: they cancel what they replace
            log.exception("square-off: cancelling intraday orders failed", extra={"account_id": account_id})
        for position_id, symbol, _ in positions:
            totals["positions"] += 1
            pos = db.session.get(Position, position_id, populate_existing=True)
            qty = pos.quantity if pos is not None else 0
            db.session.rollback()
            if qty == 0:
                continue  # closed meanwhile
            req = OrderRequest(
                symbol=symbol,
                side=Side.SELL if qty > 0 else Side.BUY,
                type=OrderType.MARKET,
                product=Product.I,
                quantity=abs(qty),
                validity=Validity.DAY,
                tag=TAG,
            )
            try:
                ins = instrument_for(symbol)
                row, _ = place_exit(SystemUser(user_id), account_id, req, ins, quote_for(symbol), qty)
                totals["orders"] += 1
                done.append({"order_id": row.id, "symbol": symbol, "quantity": qty, "status": row.status})
            except DomainError as exc:
                db.session.rollback()
                totals["failed"] += 1
                failed.append({"symbol": symbol, "quantity": qty, "code": exc.code, "message": exc.message})
                log.warning("square-off exit refused", extra={"account_id": account_id, "symbol": symbol})
        events = Events()
        events.add(
            user_id,
            "square_off_done",
            {"account_id": account_id, "segment": segment, "orders": done, "failed": failed},
        )
        events.send()
    log.info("square-off done", extra={"segment": segment, **totals})
    return totals
