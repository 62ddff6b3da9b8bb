"""Orders above the freeze quantity, placed with ``slice: true``: child orders of at most the freeze
quantity (whole lots, at most ``MAX_SLICES``), like Upstox's auto-slicing. On a live account each
slice is its own exactly-once live order (``live.submit_many``): recorded before the first call, and
a retry with the key looks up every slice left ``unknown`` before sending it.

The slices are judged together under one account lock and one risk decision (all are accepted or
all refused), then each is its own order: its own row, fills and charges (Upstox charges brokerage
per sliced order). The first slice is the parent: the others carry its id in ``parent_id``.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backend.domain.errors import Conflict, RiskRejected
from backend.domain.orders.types import OrderRequest
from backend.extensions import db
from backend.models.trading import Order, Position
from backend.services.trading.common import Events, commit_keeping, settle_numerics
from backend.services.trading.orders.brokers import resolve_broker
from backend.services.trading.orders.placement import (
    _by_key,
    _replay,
    coordinator,
    count_orders,
    lock_for_order,
    new_row,
    reasons_text,
    reject_row,
    rejection,
    send_to_broker,
    snapshot,
)
from backend.services.trading.orders.prepare import (
    fields_error,
    quote_for,
    request_hash,
    session_gate,
    validate_request,
)

MAX_SLICE_KEY = 60  # slice keys are "<key>/<i>" in the 64-character client_order_id column


def _slice_key(key: str | None, i: int) -> str | None:
    if key is None:
        return None
    return key if i == 0 else f"{key}/{i}"


def _with_slices(parent: Order) -> Order:
    children = db.session.scalars(select(Order).where(Order.parent_id == parent.id).order_by(Order.id))
    parent.slices = [parent, *children]  # type: ignore[attr-defined] - read by OrderSchema.slices
    return parent


def place_sliced(
    user: Any,
    account_id: int | None,
    ins: Any,
    req: OrderRequest,
    sizes: list[int],
    key: str | None,
    data: dict[str, Any],
) -> tuple[Order, int]:
    """Place ``req`` as one order per quantity in ``sizes``; returns (first slice, 201) with
    ``.slices`` set. Raises RiskRejected (every slice stored rejected) when the risk check refuses."""
    if key is not None and len(key) > MAX_SLICE_KEY:
        raise fields_error(
            "Idempotency key too long for a sliced order.",
            {"client_order_id": f"At most {MAX_SLICE_KEY} characters for a sliced order."},
        )
    quote = quote_for(ins.symbol)
    validate_request(req, ins, quote.ltp)
    reqs = [replace(req, quantity=q, client_order_id=_slice_key(key, i)) for i, q in enumerate(sizes)]
    events = Events()
    rows: list[Order] = []
    digest = ""
    refused: RiskRejected | None = None
    try:
        acct, global_kill = lock_for_order(user, account_id)
        account_id = acct.id
        session_gate(acct.mode, ins, req)
        digest = request_hash(data, acct.id)
        if key:
            existing = _by_key(acct.id, key)  # a concurrent retry may have won the race for the lock
            if existing is not None:
                db.session.commit()
                row, status = _replay(existing, digest)
                return _with_slices(row), status
        positions: list[Position] = []
        ltp = {ins.symbol: quote.ltp}
        snap, limits = snapshot(acct, ltp, rows=positions, global_kill=global_kill)
        coord = coordinator()
        instruments = {ins.symbol: ins}
        decision = coord.evaluate_basket(reqs, instruments, ltp, snap, limits)
        impacts = coord.project(reqs, instruments, ltp, snap, limits)
        rows = [
            new_row(
                acct,
                r,
                r.client_order_id,
                digest,
                data.get("strategy_id"),
                charges.total if (charges := decision.charges[i]) else Decimal(0),
                impacts[i].cash_needed if decision.allowed else None,
            )
            for i, r in enumerate(reqs)
        ]
        db.session.add_all(rows)
        db.session.flush()
        for row in rows[1:]:
            row.parent_id = rows[0].id
        if not decision.allowed:
            checks = [f.to_dict() for f in decision.failed]
            message = f"sliced order rejected: {reasons_text(decision.failed)}"
            for row in rows:
                reject_row(row, checks, message, events)
            refused = rejection(rows[0])  # before the commit expires it (see placement.place_locked)
            db.session.commit()
        elif acct.mode == "live":
            # each slice is its own live order: all recorded, then each sent exactly once
            from backend.services.trading.orders import live

            count_orders(acct, limits, len(rows))
            live.submit_many(user, acct, rows, reqs, events)
            rows[0].slices = rows  # type: ignore[attr-defined] - read by OrderSchema.slices
            return rows[0], 201
        else:
            broker = resolve_broker(acct, {ins.symbol: quote}, events)
            broker.positions = {p.symbol: p for p in positions}
            for row, r in zip(rows, reqs, strict=True):
                send_to_broker(broker, acct, row, r)
            count_orders(acct, limits, len(rows))
            for row in rows:
                settle_numerics(row)
            commit_keeping(user, *rows)
    except IntegrityError:
        db.session.rollback()
        if key and account_id is not None:
            existing = _by_key(account_id, key)
            if existing is not None:
                row, status = _replay(existing, digest)
                return _with_slices(row), status
        raise
    except (RiskRejected, Conflict):
        raise
    except Exception:
        db.session.rollback()
        raise
    events.send()
    if refused is not None:
        raise refused
    rows[0].slices = rows  # type: ignore[attr-defined] - read by OrderSchema.slices
    return rows[0], 201
