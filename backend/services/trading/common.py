"""Shared plumbing of the trading services: config, account locking, events after commit, dates."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask import Flask, current_app
from sqlalchemy import select

from backend.domain.charges import TradingConfig, load_trading_config
from backend.domain.market.calendar import IST
from backend.domain.orders.types import Instrument
from backend.extensions import db
from backend.models.trading import Order, Position, Trade, TradingAccount

log = logging.getLogger(__name__)


def trading_config() -> TradingConfig:
    """config/trading.yaml (``TRADING_CONFIG``), parsed once per app."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    cfg = app.extensions.get("trading_config")
    if cfg is None:
        cfg = app.extensions.setdefault("trading_config", load_trading_config(app.config["TRADING_CONFIG"]))
    return cfg


def trading_day(now: datetime | None = None) -> date:
    return (now or datetime.now(IST)).astimezone(IST).date()


def lock_account(account_id: int) -> TradingAccount:
    """Lock the account row for the rest of the transaction and return it freshly loaded.

    PostgreSQL: ``SELECT ... FOR UPDATE`` serialises every money-moving transaction of one account.
    SQLite has no row locks: a FOR UPDATE select makes the transaction take the database's write
    lock first (backend/database.py), so the row is read fresh and money moves one writer at a time.
    """
    stmt = (
        select(TradingAccount)
        .where(TradingAccount.id == account_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return db.session.execute(stmt).scalar_one()


def settle_numerics(obj: Any) -> None:
    """Round every fixed-scale Numeric attribute of ``obj`` to its column scale (half away from zero,
    as PostgreSQL does), so the value kept in memory is exactly the value the database stores."""
    for key, quantum in _numeric_scales(type(obj)):
        value = getattr(obj, key)
        if value is not None:
            setattr(obj, key, Decimal(value).quantize(quantum, ROUND_HALF_UP))


@functools.cache
def _numeric_scales(cls: type) -> tuple[tuple[str, Decimal], ...]:
    """(attribute, quantum) of a mapped class's fixed-scale Numeric columns; the mapping never changes."""
    from sqlalchemy import Numeric
    from sqlalchemy import inspect as sa_inspect

    return tuple(
        (col.key, Decimal(1).scaleb(-col.type.scale))
        for col in sa_inspect(cls).columns
        if isinstance(col.type, Numeric) and getattr(col.type, "scale", None) is not None
    )


def commit_keeping(*keep: Any) -> None:
    """Commit, leaving ``keep`` loaded: rows this transaction only read (the authenticated user) or
    whose numerics went through :func:`settle_numerics` first (so memory equals the stored row).

    Everything else is expired as a normal commit does, so other written rows are re-read with the
    values the database stored. Keeping the user and the new order saves the two reloads the access
    log's ``user.id`` and the response body would otherwise cost after every order.
    """
    from sqlalchemy import inspect as sa_inspect

    session = db.session()
    kept = [obj for obj in keep if sa_inspect(obj, raiseerr=False) is not None and obj in session]
    if not kept:
        session.commit()
        return
    previous = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = previous
    for obj in list(session.identity_map.values()):
        if not any(obj is k for k in kept):
            session.expire(obj)


def to_instrument(ins: Any) -> Instrument:
    """Domain order Instrument from a market-data instrument."""
    return Instrument(
        symbol=ins.trading_symbol.upper(),
        tick_size=Decimal(ins.tick_size),
        lot_size=int(ins.lot_size or 1),
        segment=charge_segment(ins.segment),
        exchange=ins.exchange,
        freeze_quantity=getattr(ins, "freeze_quantity", None),
        instrument_type=ins.instrument_type,
        underlying=(ins.underlying or "").upper() or None,
        strike=ins.strike,
        expiry=ins.expiry,
    )


def charge_segment(segment: str) -> str:
    """Market data names segments like Upstox (``NSE_EQ``); limits and charges use ``EQ``."""
    return segment.split("_", 1)[1] if "_" in segment else segment


# --------------------------------------------------------------------------- events

Emitter = Callable[[int, str, dict], None]


def _default_emitter(user_id: int, event: str, payload: dict) -> None:
    from backend.realtime import emit_to_user

    emit_to_user(user_id, event, payload)


_EMITTER = "trading.emitter"


def set_emitter(app: Flask, emit: Emitter | None) -> Emitter | None:
    """Route this app's trading events through ``emit`` (None: Socket.IO). Kept in ``app.extensions``
    so tests can observe what is emitted, and when, without a module global. Returns the previous one."""
    previous = app.extensions.get(_EMITTER)
    app.extensions[_EMITTER] = emit
    return previous


def _emitter() -> Emitter:
    return current_app.extensions.get(_EMITTER) or _default_emitter


class Events:
    """Collects Socket.IO events during a transaction; ``send()`` is called only after the commit.

    ``deferred``: payloads of rows are built by ``render()`` (after the transaction's flush, when new
    rows have their ids) instead of when the event is added, so the caller may flush once at the end.
    """

    def __init__(self, deferred: bool = False) -> None:
        self.deferred = deferred
        self.items: list[tuple[int, str, Any]] = []

    def add(self, user_id: int, event: str, payload: dict | Callable[[], dict]) -> None:
        self.items.append((user_id, event, payload))

    def _row(self, user_id: int, event: str, build: Callable[[Any], dict], row: Any) -> None:
        self.add(user_id, event, (lambda: build(row)) if self.deferred else build(row))

    def order(self, row: Order) -> None:
        self._row(row.user_id, "order_update", order_payload, row)

    def fill(self, user_id: int, row: Trade) -> None:
        self._row(user_id, "fill", trade_payload, row)

    def position(self, user_id: int, row: Position) -> None:
        self._row(user_id, "position_update", position_payload, row)

    def render(self) -> None:
        """Build the deferred payloads now (call after the flush, before the commit expires rows)."""
        self.items = [(u, e, p() if callable(p) else p) for u, e, p in self.items]

    def send(self) -> None:
        from backend.realtime import emit_batch

        self.render()
        items, self.items = self.items, []
        if not items:
            return
        emit = _emitter()
        try:
            with emit_batch():  # one queue message for the whole transaction's events
                for user_id, event, payload in items:
                    try:
                        emit(user_id, event, payload)
                    except Exception:  # noqa: BLE001 - a dead socket layer must not undo a committed order
                        log.exception("event emit failed", extra={"event": event})
        except Exception:  # noqa: BLE001 - the batch's publish failed: the order stays committed
            log.exception("event publish failed")


def _s(v: Any) -> str | None:
    return None if v is None else str(v)


def order_payload(o: Order) -> dict:
    return {
        "id": o.id,
        "account_id": o.account_id,
        "client_order_id": o.client_order_id,
        "symbol": o.symbol,
        "side": o.side,
        "type": o.type,
        "product": o.product,
        "quantity": o.quantity,
        "filled_quantity": o.filled_quantity,
        "price": _s(o.price),
        "trigger_price": _s(o.trigger_price),
        "average_price": _s(o.average_price),
        "status": o.status,
        "status_message": o.status_message,
        "tag": o.tag,
    }


def trade_payload(t: Trade) -> dict:
    return {
        "id": t.id,
        "order_id": t.order_id,
        "account_id": t.account_id,
        "symbol": t.symbol,
        "side": t.side,
        "quantity": t.quantity,
        "price": _s(t.price),
        "charges": _s(t.charges),
        "realised_pnl": _s(t.realised_pnl),
    }


def position_payload(p: Position) -> dict:
    return {
        "account_id": p.account_id,
        "symbol": p.symbol,
        "product": p.product,
        "quantity": p.quantity,
        "cost_basis": _s(p.cost_basis),
        "realised_pnl": _s(p.realised_pnl),
    }
