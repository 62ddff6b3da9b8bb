"""Placing one order: risk snapshot under the account lock, risk decision, recorded row, broker.

Placement is one transaction holding the account row lock (``common.lock_account``), so concurrent orders
of one account are judged one after another against the cash left by the previous one. Events go out only
after the commit.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from backend.domain.errors import (
    Conflict,
    RiskRejected,
)
from backend.domain.market.types import Quote
from backend.domain.orders.types import OrderRequest, OrderStatus, Product, Side
from backend.domain.risk import AccountSnapshot, RiskCoordinator, RiskDecision, WorkingOrder
from backend.extensions import db
from backend.models.trading import UNRESOLVED_STATUSES, Order, Position, TradingAccount
from backend.observability import metrics
from backend.services.trading import risk
from backend.services.trading.accounts import (
    cash_figures,
    default_account,
    positions_reserved_working,
    resolve_account,
)
from backend.services.trading.common import (
    Events,
    commit_keeping,
    lock_account,
    trading_config,
    trading_day,
)
from backend.services.trading.orders.brokers import resolve_broker
from backend.services.trading.orders.prepare import (
    fields_error,
    prepare,
    quote_for,
    request_hash,
    session_gate,
    slice_sizes,
    validate_request,
)
from backend.services.trading.paper_broker import set_status
from backend.services.trading.row_writes import flush_order

log = logging.getLogger(__name__)


def snapshot(
    acct: TradingAccount,
    ltp: dict[str, Decimal],
    exclude_order: Order | None = None,
    rows: list[Position] | None = None,
    global_kill: bool | None = None,
    exclude: Sequence[Order] = (),
) -> tuple[AccountSnapshot, Any]:
    """What the risk coordinator needs, read under the account lock.

    ``rows``, when given, receives every position row of the account (loaded fresh under the lock),
    so the fill that follows in the same transaction needs no second positions query.
    ``exclude_order`` / ``exclude``: working orders judged as if gone (the order being modified, or the
    orders an exit cancels when it is accepted): their cash and quantities are not counted.
    """
    limits = risk.limits_for(acct)
    loaded, reserved, working_rows = positions_reserved_working(acct)
    if rows is not None:
        rows.extend(loaded)
    rows = loaded
    gone = [o for o in (exclude_order, *exclude) if o is not None]
    if acct.mode == "live":
        # A live account's cash is at the broker (our ledger holds none): buying power is the
        # broker's available margin, which already nets its open orders.
        available = resolve_broker(acct).funds(str(acct.id)).available_cash
    else:
        available = cash_figures(acct, rows, limits.short_margin_pct, reserved).available
    for o in gone:
        available += Decimal(o.reserved_cash or 0)
    gone_ids = {o.id for o in gone}
    working = [
        WorkingOrder(w.symbol, Product(w.product), Side(w.side), w.unfilled)
        for w in working_rows
        if w.order_id not in gone_ids and w.unfilled > 0
    ]
    positions: dict[str, int] = {}
    by_product: dict[tuple[str, str], int] = {}
    for p in rows:
        if p.quantity:
            positions[p.symbol] = positions.get(p.symbol, 0) + p.quantity
            by_product[(p.symbol, p.product)] = p.quantity
    unrealised = Decimal(0)
    if positions:
        from backend.services import market_data

        missing = [s for s in positions if s not in ltp]
        prices = dict(ltp)
        if missing:
            try:
                prices.update(market_data.ltp(missing))
            except Exception:  # noqa: BLE001 - no price: that position's unrealised P&L is unknown, count 0
                log.warning("ltp unavailable for risk snapshot", exc_info=True)
        for p in rows:
            if p.quantity and p.symbol in prices:
                unrealised += p.quantity * Decimal(prices[p.symbol]) - Decimal(p.cost_basis)
    snap = AccountSnapshot(
        available_cash=available,
        positions=positions,
        breaker=risk.breaker_state(acct, limits),
        day_unrealised_pnl=unrealised,
        global_kill=risk.get_global_kill_switch() if global_kill is None else global_kill,
        product_positions=by_product,
        working=working,
    )
    return snap, limits


def with_fno_prices(snap: AccountSnapshot, instruments: Any) -> AccountSnapshot:
    """The snapshot plus what F&O margin needs: the prices of the derivatives' underlyings, now."""
    underlyings = sorted({i.underlying for i in instruments if i.is_derivative and i.underlying})
    prices: dict[str, Decimal] = {}
    if underlyings:
        from backend.services import market_data

        try:
            prices = market_data.ltp(underlyings)
        except Exception:  # noqa: BLE001 - no underlying price: the margin model uses the contract's
            log.warning("underlying ltp unavailable for F&O margin", exc_info=True)
    return replace(snap, underlying_prices=prices, as_of=datetime.now(UTC))


def coordinator() -> RiskCoordinator:
    """The app's coordinator: stateless, so built once per app with its parsed config."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    coord = app.extensions.get("trading_coordinator")
    if coord is None:
        cfg = trading_config()
        coord = app.extensions.setdefault(
            "trading_coordinator",
            RiskCoordinator(cfg.charges, cfg.fills.market_collar_pct, margin=cfg.margin),
        )
    return coord


def rejection(row: Order) -> RiskRejected:
    return RiskRejected(
        row.status_message or "Order rejected by risk checks.",
        details={"checks": list(row.reject_reasons or []), "order_id": row.id},
    )


def _replay(row: Order, digest: str) -> tuple[Order, int]:
    if row.request_hash != digest:
        raise Conflict(
            "This idempotency key was already used with a different request.",
            {"client_order_id": row.client_order_id, "order_id": row.id},
            code="IDEMPOTENCY_CONFLICT",
        )
    slices = [
        c
        for c in db.session.scalars(
            select(Order).where(Order.parent_id == row.id, Order.status.in_(UNRESOLVED_STATUSES))
        )
    ]
    if slices:
        # a sliced live order: slices left unknown are looked up (and sent once if absent) as well
        from backend.services.trading.orders import live

        if row.status in UNRESOLVED_STATUSES:
            row, _ = live.resolve_retry(row)
        live.resolve_group(sorted(slices, key=lambda c: c.id))
        return row, row.response_status if row.status not in UNRESOLVED_STATUSES else 202
    if row.status in UNRESOLVED_STATUSES:
        # a live order whose broker call ended without an answer: look it up before anything else
        from backend.services.trading.orders import live

        return live.resolve_retry(row)
    if row.response_status == 422:
        raise rejection(row)
    return row, row.response_status


def _by_key(account_id: int, key: str) -> Order | None:
    return db.session.scalar(
        select(Order)
        .where(Order.account_id == account_id, Order.client_order_id == key)
        .execution_options(populate_existing=True)
    )


def new_row(
    acct: TradingAccount,
    req: OrderRequest,
    key: str | None,
    digest: str | None,
    strategy_id: str | None,
    charges: Decimal,
    reserved: Decimal | None,
    margin: Decimal = Decimal(0),
) -> Order:
    """The order row recorded before any broker call; ``reserved`` None: the risk check refused it."""
    return Order(
        account_id=acct.id,
        user_id=acct.user_id,
        client_order_id=key,
        request_hash=digest,
        symbol=req.symbol,
        side=str(req.side),
        type=str(req.type),
        product=str(req.product),
        validity=str(req.validity),
        quantity=req.quantity,
        # explicit rather than column defaults: the paper broker works the row before its INSERT
        filled_quantity=0,
        status_message="",
        price=req.price,
        trigger_price=req.trigger_price,
        status="pending",
        tag=req.tag,
        strategy_id=strategy_id,
        estimated_charges=charges,
        # set before the first flush so the INSERT carries them (no UPDATE of the fresh row)
        reserved_cash=Decimal(0) if reserved is None else reserved,
        margin=margin if reserved is not None else Decimal(0),
        response_status=422 if reserved is None else 201,
        reject_reasons=[],
        amo=req.amo,
    )


def broker_ref(acct: TradingAccount, row: Order) -> str:
    """The id the account's broker knows the order by: Upstox's order id, or our row id on paper."""
    if acct.mode == "paper":
        return str(row.id)
    if not row.broker_order_id:
        raise Conflict(
            "The broker has not acknowledged this order yet; retry shortly.", code="ORDER_NOT_ACKNOWLEDGED"
        )
    return row.broker_order_id


def reasons_text(failed: list[Any]) -> str:
    return "; ".join(f"{f.name}: {f.reason}" for f in failed)


def reject_row(row: Order, reasons: list[dict[str, Any]], message: str, events: Events) -> None:
    row.reject_reasons = reasons
    metrics.record_risk_checks(reasons)
    row.response_status = 422
    set_status(row, OrderStatus.REJECTED, message)
    events.order(row)


def send_to_broker(broker: Any, acct: TradingAccount, row: Order, req: OrderRequest) -> None:
    """Hand a recorded row to the broker. The paper broker works that very row (no look-up, no flush);
    a paper AMO waits, recorded and holding its cash, for the segment's next open (``orders.amo``)."""
    if acct.mode == "paper" and row.amo:
        from backend.services.trading.orders.amo import queue_amo

        queue_amo(row, getattr(broker, "events", None))
        return
    if acct.mode == "paper":
        broker.place_recorded(acct, row, req.is_stop)
        return
    placed = broker.place_order(
        str(acct.id), replace(req, client_order_id=row.client_order_id or f"oid:{row.id}")
    )
    row.broker_order_id = placed.order_id
    row.status = str(placed.status)


def count_orders(acct: TradingAccount, limits: Any, n: int) -> None:
    """Count ``n`` accepted orders in today's breaker state (max_orders_per_day)."""
    breaker = risk.breaker_for(limits)
    st = risk.breaker_state(acct, limits)
    for _ in range(n):
        st = breaker.record_order(st, trading_day())
    risk.save_breaker(acct, st)
    metrics.record_orders_placed(acct.mode, n)


# --------------------------------------------------------------------------- use cases


@metrics.counts_rejections
def place_order(user: Any, data: dict[str, Any], idempotency_key: str | None = None) -> tuple[Order, int]:
    """Place an order; returns (order, HTTP-neutral status 201). Raises RiskRejected after storing it."""
    body_key = data.get("client_order_id")
    if body_key and idempotency_key and body_key != idempotency_key:
        raise fields_error(
            "client_order_id and Idempotency-Key differ.",
            {"client_order_id": "Must equal the Idempotency-Key header when both are sent."},
        )
    key = body_key or idempotency_key
    account_id = data.get("account_id")
    if key or account_id is not None:
        # ownership (404) and a replay answer before any validation, as they always have
        acct = resolve_account(user, account_id)
        account_id = acct.id
        if key:
            existing = _by_key(acct.id, key)
            if existing is not None:
                return _replay(existing, request_hash(data, acct.id))

    ins, req = prepare(data, key)
    sizes = slice_sizes(ins, req, bool(data.get("slice")))
    if len(sizes) > 1:
        from backend.services.trading.orders.slicing import place_sliced

        return place_sliced(user, account_id, ins, req, sizes, key, data)
    quote = quote_for(ins.symbol)
    validate_request(req, ins, quote.ltp)
    # the default account is resolved and locked by one statement inside the transaction
    return place_locked(user, account_id, req, ins, quote, key, data, data.get("strategy_id"))


@functools.cache
def _lock_statement(default: bool) -> Any:
    """The account-lock statement, built once: ``:key`` is the user id (default account) or the
    account id. Built per call, constructing it and deriving its cache key cost more than its SQL."""
    where = (
        (TradingAccount.default_for_user == bindparam("key"), TradingAccount.deleted_at.is_(None))
        if default
        else (TradingAccount.id == bindparam("key"),)
    )
    return (
        select(TradingAccount, risk.global_kill_subquery())
        .where(*where)
        .with_for_update(of=TradingAccount)
        .execution_options(populate_existing=True)
    )


def lock_for_order(user: Any, account_id: int | None) -> tuple[TradingAccount, bool]:
    """Row-lock the order's account (None: the user's default, created on a first order) and read the
    global kill switch in the same statement: (account, global kill on)."""
    stmt = _lock_statement(account_id is None)
    key = user.id if account_id is None else account_id
    got = db.session.execute(stmt, {"key": key}).one_or_none()
    if got is None:
        acct = lock_account(default_account(user).id if account_id is None else account_id)
        return acct, risk.get_global_kill_switch()
    return got[0], bool(got[1])


def place_locked(
    user: Any,
    account_id: int | None,
    req: OrderRequest,
    ins: Any,
    quote: Quote,
    key: str | None,
    data: dict[str, Any] | None,
    strategy_id: str | None = None,
    cancel_on_accept: Callable[[TradingAccount], list[Order]] | None = None,
    on_accept: Callable[[TradingAccount, Order], None] | None = None,
) -> tuple[Order, int]:
    """One transaction under the account lock. ``account_id`` None: the user's default account.
    ``data`` is the request body the idempotency digest is computed from (None: no digest).

    An exit placed for a position (close, stop, square-off) passes ``cancel_on_accept``: the working
    orders it replaces (the position's own stop and take-profit orders), found under the lock. The
    order is judged as if they were gone, and they are cancelled only if it is accepted, in the same
    transaction, so a refused exit leaves the position's protection as it was. ``on_accept`` runs in
    the transaction of an accepted order (e.g. clearing the stop that fired it)."""
    events = Events(deferred=True)
    digest: str | None = None
    try:
        acct, global_kill = lock_for_order(user, account_id)
        account_id = acct.id
        session_gate(acct.mode, ins, req)  # 422 outside the session unless a LIMIT/SL AMO
        digest = request_hash(data, acct.id) if data is not None else None
        if key:
            existing = _by_key(acct.id, key)  # a concurrent retry may have won the race for the lock
            if existing is not None:
                db.session.commit()
                return _replay(existing, digest or "")
        positions: list[Position] = []
        replaced = cancel_on_accept(acct) if cancel_on_accept is not None else []
        snap, limits = snapshot(
            acct, {ins.symbol: quote.ltp}, rows=positions, global_kill=global_kill, exclude=replaced
        )
        if ins.is_derivative:
            snap = with_fno_prices(snap, [ins])
        decision = coordinator().evaluate(req, ins, quote.ltp, snap, limits)
        row = new_row(
            acct,
            req,
            key,
            digest,
            strategy_id,
            decision.estimated_charges,
            decision.cash_required if decision.allowed else None,
            decision.margins[0] if decision.margins else Decimal(0),
        )
        db.session.add(row)
        if not decision.allowed:
            reject_row(row, [f.to_dict() for f in decision.failed], reasons_text(decision.failed), events)
            db.session.flush()
            events.render()
            # Built before the commit expires the row: a reset waiting for the account lock may delete
            # it the moment the lock goes, and reloading it then raised (issue 17: a 500, not the 422).
            refused = rejection(row)
            db.session.commit()
            events.send()
            raise refused
        if acct.mode != "paper":
            # Live: the row and its key are committed in ``submitting`` before the broker is called
            # (orders/live.py). The paper broker runs in this very transaction instead, so its row,
            # fill and ledger go out in the one flush below.
            from backend.services.trading.orders import live

            count_orders(acct, limits, 1)
            return live.submit(user, acct, row, req, events)
        broker = resolve_broker(acct, {ins.symbol: quote}, events)
        for old in replaced:
            broker.cancel_order(str(acct.id), broker_ref(acct, old))
        if acct.mode == "paper":
            # reuse the position rows the snapshot just loaded under this lock
            broker.loaded_positions = {(p.symbol, p.product): p for p in positions}
        send_to_broker(broker, acct, row, req)
        if on_accept is not None:
            on_accept(acct, row)
        # Counted after the broker call so the account row is written once, at the commit. Counting
        # commutes with a fill's loss bookkeeping, and both read the state the other left on ``acct``.
        count_orders(acct, limits, 1)
        # every row of the order at once (Core statements when nothing else is pending); then the
        # events can carry their ids
        flush_order(db.session(), row)
        events.render()
        commit_keeping(user, row)
    except IntegrityError:
        db.session.rollback()
        if key:
            existing = _by_key(account_id, key)
            if existing is not None:
                return _replay(existing, digest or "")
        raise
    except (RiskRejected, Conflict):
        raise
    except Exception:
        db.session.rollback()
        raise
    events.send()
    return row, 201


def preview_order(user: Any, data: dict[str, Any]) -> dict[str, Any]:
    """Risk decision and charge estimate for an order, changing nothing."""
    acct = resolve_account(user, data.get("account_id"))
    ins, req = prepare(data, None)
    quote = quote_for(ins.symbol)
    validate_request(req, ins, quote.ltp)
    snap, limits = snapshot(acct, {ins.symbol: quote.ltp})
    if ins.is_derivative:
        snap = with_fno_prices(snap, [ins])
    decision: RiskDecision = coordinator().evaluate(req, ins, quote.ltp, snap, limits)
    db.session.rollback()
    charges = decision.charges[0]
    return {
        "allowed": decision.allowed,
        "checks": [f.to_dict() for f in decision.failed],
        "checks_run": decision.checks_run,
        "trading_state": str(decision.trading_state),
        "estimated_charges": decision.estimated_charges,
        "charges": charges.to_dict() if charges else {},
        "cash_required": decision.cash_required,
        "margin": decision.margins[0] if decision.margins else Decimal(0),
        "available_cash": snap.available_cash,
        "ltp": quote.ltp,
        "account_id": acct.id,
    }
