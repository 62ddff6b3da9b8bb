"""Order use cases: place (risk, idempotency, broker), preview, modify, cancel, list; tick matching.

Placement, modification, cancellation and fills are each one transaction holding the account row lock
(``common.lock_account``), so concurrent orders of one account are judged one after another against
the cash left by the previous one. Events go out only after the commit.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from backend.domain.broker.base import Broker, OrderModification
from backend.domain.errors import (
    BrokerUnavailable,
    Conflict,
    DomainError,
    NotFound,
    RiskRejected,
    ValidationFailed,
)
from backend.domain.market.types import Quote
from backend.domain.orders.types import OrderRequest, OrderStatus, OrderType, Product, Side, Validity
from backend.domain.orders.validation import validate_order, validate_trigger_against_ltp
from backend.domain.risk import AccountSnapshot, RiskCoordinator, RiskDecision
from backend.extensions import db
from backend.models.trading import WORKING_STATUSES, Order, Position, Trade, TradingAccount, is_working
from backend.services.pagination import Page, keyset_page
from backend.services.trading import risk
from backend.services.trading.accounts import (
    cash_figures,
    default_account,
    positions_and_reserved,
    resolve_account,
)
from backend.services.trading.common import (
    Events,
    commit_keeping,
    lock_account,
    settle_numerics,
    to_instrument,
    trading_config,
    trading_day,
)
from backend.services.trading.paper_broker import PaperBroker, set_status, work_order

log = logging.getLogger(__name__)
REQUEST_FIELDS = (
    "symbol",
    "side",
    "type",
    "product",
    "quantity",
    "validity",
    "price",
    "trigger_price",
    "tag",
    "strategy_id",
)


# --------------------------------------------------------------------------- broker resolution

# Live broker clients are provided by the broker integration: ``live_broker_factory(account) -> Broker``.
# Nothing registers one by default, so a live account fails with BrokerUnavailable.
live_broker_factory: list[Callable[[TradingAccount], Broker] | None] = [None]


def resolve_broker(
    acct: TradingAccount, quotes: dict[str, Quote] | None = None, events: Events | None = None
) -> Any:
    """Paper accounts always get the PaperBroker: the live factory is never consulted for them."""
    if acct.mode == "paper":
        return PaperBroker(quotes, events)
    if acct.mode != "live":
        raise BrokerUnavailable(f"Unknown account mode {acct.mode!r}.")
    factory = live_broker_factory[0]
    if factory is None:
        raise BrokerUnavailable("No live broker is connected for this account.")
    return factory(acct)


# --------------------------------------------------------------------------- helpers


def _fields_error(message: str, errors: dict[str, str]) -> ValidationFailed:
    return ValidationFailed(message, {"fields": {k: [v] for k, v in errors.items()}})


def _instrument(symbol: str):
    from backend.services import market_data

    ins = market_data.find_instrument(symbol)
    if ins is None:
        raise _fields_error("Unknown symbol.", {"symbol": f"Unknown symbol: {symbol}."})
    return to_instrument(ins)


def _quote(symbol: str) -> Quote:
    from backend.services import market_data

    got = market_data.quotes([symbol])
    if not got:
        raise BrokerUnavailable(f"No quote available for {symbol}.")
    return got[0]


def _build_request(data: dict[str, Any], client_order_id: str | None) -> OrderRequest:
    return OrderRequest(
        symbol=data["symbol"].strip().upper(),
        side=Side(data["side"]),
        type=OrderType(data["type"]),
        product=Product(data.get("product") or "D"),
        quantity=int(data["quantity"]),
        validity=Validity(data.get("validity") or "DAY"),
        price=data.get("price"),
        trigger_price=data.get("trigger_price"),
        tag=data.get("tag"),
        client_order_id=client_order_id,
    )


def _validate(req: OrderRequest, ins: Any, ltp: Decimal | None) -> None:
    try:
        validate_order(req, ins)
        if ltp is not None:
            validate_trigger_against_ltp(req, ltp)
    except ValidationFailed as exc:
        raise _fields_error("Order validation failed.", {k: str(v) for k, v in exc.details.items()}) from None


def _prepare(data: dict[str, Any], key: str | None) -> tuple[Any, OrderRequest]:
    """Instrument and request of an order body, statically validated (tick, lot, price fields)."""
    ins = _instrument(data["symbol"])
    req = _build_request(data, key)
    _validate(req, ins, None)
    return ins, req


def request_hash(data: dict[str, Any], account_id: int) -> str:
    canon = {k: (None if data.get(k) is None else str(data.get(k))) for k in REQUEST_FIELDS}
    canon["symbol"] = (canon["symbol"] or "").upper()
    canon["account_id"] = str(account_id)
    return hashlib.sha256(json.dumps(canon, sort_keys=True).encode()).hexdigest()


def snapshot(
    acct: TradingAccount,
    ltp: dict[str, Decimal],
    exclude_order: Order | None = None,
    rows: list[Position] | None = None,
    global_kill: bool | None = None,
) -> tuple[AccountSnapshot, Any]:
    """What the risk coordinator needs, read under the account lock.

    ``rows``, when given, receives every position row of the account (loaded fresh under the lock),
    so the fill that follows in the same transaction needs no second positions query.
    """
    limits = risk.limits_for(acct)
    loaded, reserved = positions_and_reserved(acct)
    if rows is not None:
        rows.extend(loaded)
    rows = loaded
    if acct.mode == "live":
        # A live account's cash is at the broker (our ledger holds none): buying power is the
        # broker's available margin, which already nets its open orders.
        available = resolve_broker(acct).funds(str(acct.id)).available_cash
    else:
        available = cash_figures(acct, rows, limits.short_margin_pct, reserved).available
    if exclude_order is not None:
        available += Decimal(exclude_order.reserved_cash or 0)
    positions = {p.symbol: p.quantity for p in rows if p.quantity}
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
        breaker=risk.breaker_state(acct),
        day_unrealised_pnl=unrealised,
        global_kill=risk.get_global_kill_switch() if global_kill is None else global_kill,
    )
    return snap, limits


def coordinator() -> RiskCoordinator:
    """The app's coordinator: stateless, so built once per app with its parsed config."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    coord = app.extensions.get("trading_coordinator")
    if coord is None:
        cfg = trading_config()
        coord = app.extensions.setdefault(
            "trading_coordinator", RiskCoordinator(cfg.charges, cfg.fills.market_collar_pct)
        )
    return coord


def _rejection(row: Order) -> RiskRejected:
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
    if row.response_status == 422:
        raise _rejection(row)
    return row, row.response_status


def _by_key(account_id: int, key: str) -> Order | None:
    return db.session.scalar(
        select(Order)
        .where(Order.account_id == account_id, Order.client_order_id == key)
        .execution_options(populate_existing=True)
    )


def _new_row(
    acct: TradingAccount,
    req: OrderRequest,
    key: str | None,
    digest: str | None,
    strategy_id: str | None,
    charges: Decimal,
    reserved: Decimal | None,
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
        response_status=422 if reserved is None else 201,
        reject_reasons=[],
    )


def _reason(failed: list[Any]) -> str:
    return "; ".join(f"{f.name}: {f.reason}" for f in failed)


def _reject(row: Order, reasons: list[dict[str, Any]], message: str, events: Events) -> None:
    row.reject_reasons = reasons
    row.response_status = 422
    set_status(row, OrderStatus.REJECTED, message)
    events.order(row)


def _send(broker: Any, acct: TradingAccount, row: Order, req: OrderRequest) -> None:
    """Hand a recorded row to the broker. The paper broker works that very row (no look-up, no flush)."""
    if acct.mode == "paper":
        broker.place_recorded(acct, row, req.is_stop)
        return
    placed = broker.place_order(
        str(acct.id), replace(req, client_order_id=row.client_order_id or f"oid:{row.id}")
    )
    row.broker_order_id = placed.order_id
    row.status = str(placed.status)


def _count_orders(acct: TradingAccount, limits: Any, n: int) -> None:
    """Count ``n`` accepted orders in today's breaker state (max_orders_per_day)."""
    breaker = risk.breaker_for(limits)
    st = risk.breaker_state(acct)
    for _ in range(n):
        st = breaker.record_order(st, trading_day())
    risk.save_breaker(acct, st)


# --------------------------------------------------------------------------- use cases


def place_order(user: Any, data: dict[str, Any], idempotency_key: str | None = None) -> tuple[Order, int]:
    """Place an order; returns (order, HTTP-neutral status 201). Raises RiskRejected after storing it."""
    body_key = data.get("client_order_id")
    if body_key and idempotency_key and body_key != idempotency_key:
        raise _fields_error(
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

    ins, req = _prepare(data, key)
    quote = _quote(ins.symbol)
    _validate(req, ins, quote.ltp)
    # the default account is resolved and locked by one statement inside the transaction
    return _place_locked(user, account_id, req, ins, quote, key, data, data.get("strategy_id"))


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


def _lock_for_order(user: Any, account_id: int | None) -> tuple[TradingAccount, bool]:
    """Row-lock the order's account (None: the user's default, created on a first order) and read the
    global kill switch in the same statement: (account, global kill on)."""
    stmt = _lock_statement(account_id is None)
    key = user.id if account_id is None else account_id
    got = db.session.execute(stmt, {"key": key}).one_or_none()
    if got is None:
        acct = lock_account(default_account(user).id if account_id is None else account_id)
        return acct, risk.get_global_kill_switch()
    return got[0], bool(got[1])


def _place_locked(
    user: Any,
    account_id: int | None,
    req: OrderRequest,
    ins: Any,
    quote: Quote,
    key: str | None,
    data: dict[str, Any] | None,
    strategy_id: str | None = None,
) -> tuple[Order, int]:
    """One transaction under the account lock. ``account_id`` None: the user's default account.
    ``data`` is the request body the idempotency digest is computed from (None: no digest)."""
    events = Events(deferred=True)
    digest: str | None = None
    try:
        acct, global_kill = _lock_for_order(user, account_id)
        account_id = acct.id
        digest = request_hash(data, acct.id) if data is not None else None
        if key:
            existing = _by_key(acct.id, key)  # a concurrent retry may have won the race for the lock
            if existing is not None:
                db.session.commit()
                return _replay(existing, digest or "")
        positions: list[Position] = []
        snap, limits = snapshot(acct, {ins.symbol: quote.ltp}, rows=positions, global_kill=global_kill)
        decision = coordinator().evaluate(req, ins, quote.ltp, snap, limits)
        row = _new_row(
            acct,
            req,
            key,
            digest,
            strategy_id,
            decision.estimated_charges,
            decision.cash_required if decision.allowed else None,
        )
        db.session.add(row)
        if not decision.allowed:
            _reject(row, [f.to_dict() for f in decision.failed], _reason(decision.failed), events)
            db.session.flush()
            events.render()
            db.session.commit()
            events.send()
            raise _rejection(row)
        if acct.mode != "paper":
            # The idempotency key is recorded before a live broker is called. The paper broker runs
            # in this very transaction, so its row, fill and ledger go out in the one flush below.
            db.session.flush()
        broker = resolve_broker(acct, {ins.symbol: quote}, events)
        if acct.mode == "paper":
            # reuse the position rows the snapshot just loaded under this lock
            broker.positions = {p.symbol: p for p in positions}
        _send(broker, acct, row, req)
        # Counted after the broker call so the account row is written once, at the commit. Counting
        # commutes with a fill's loss bookkeeping, and both read the state the other left on ``acct``.
        _count_orders(acct, limits, 1)
        settle_numerics(row)
        db.session.flush()  # every row of the order at once; then the events can carry their ids
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
    ins, req = _prepare(data, None)
    quote = _quote(ins.symbol)
    _validate(req, ins, quote.ltp)
    snap, limits = snapshot(acct, {ins.symbol: quote.ltp})
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
        "available_cash": snap.available_cash,
        "ltp": quote.ltp,
        "account_id": acct.id,
    }


# --------------------------------------------------------------------------- baskets

MAX_BASKET_LEGS = 20
MAX_BASKET_KEY = 60  # leg keys are "<key>/<leg>" in the 64-character client_order_id column
_LEG_ENUMS = {"side": Side, "type": OrderType, "product": Product, "validity": Validity}


def _leg_errors(leg: Any) -> dict[str, list[str]]:
    """Shape errors of one basket leg (callers are services, not a schema), keyed by field."""
    if not isinstance(leg, dict):
        return {"_schema": ["A leg must be an object."]}
    errors: dict[str, list[str]] = {}
    for name in ("symbol", "side", "type", "quantity"):
        if leg.get(name) in (None, ""):
            errors[name] = ["Missing data for required field."]
    if leg.get("symbol") is not None and not isinstance(leg["symbol"], str):
        errors["symbol"] = ["Not a valid string."]
    for name, enum in _LEG_ENUMS.items():
        value = leg.get(name)
        if value not in (None, "") and str(value) not in {m.value for m in enum}:
            errors[name] = [f"Must be one of: {', '.join(m.value for m in enum)}."]
    qty = leg.get("quantity")
    if qty is not None and (isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0):
        errors["quantity"] = ["Must be a positive integer."]
    for name in ("tag", "strategy_id"):
        value = leg.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > 64):
            errors[name] = ["At most 64 characters."]
    for name in ("price", "trigger_price"):
        value = leg.get(name)
        if value is None:
            continue
        try:
            ok = not isinstance(value, (bool, float)) and Decimal(str(value)).is_finite()
        except ArithmeticError:
            ok = False
        if not ok:
            errors[name] = ["Not a valid decimal."]
    return errors


def _leg_key(key: str | None, i: int) -> str | None:
    return None if key is None else f"{key}/{i}"


def _basket_hash(datas: list[dict[str, Any]], account_id: int) -> str:
    legs = [request_hash(d, account_id) for d in datas]
    return hashlib.sha256(json.dumps(legs).encode()).hexdigest()


def _basket_rows(account_id: int, key: str) -> list[Order]:
    keys = [_leg_key(key, i) for i in range(MAX_BASKET_LEGS)]
    return list(
        db.session.scalars(
            select(Order)
            .where(Order.account_id == account_id, Order.client_order_id.in_(keys))
            .order_by(Order.id)
            .execution_options(populate_existing=True)
        )
    )


def _basket_rejection(rows: list[Order]) -> RiskRejected:
    return RiskRejected(
        rows[0].status_message or "Basket rejected by risk checks.",
        details={"checks": list(rows[0].reject_reasons or []), "order_ids": [r.id for r in rows]},
    )


def _basket_replay(rows: list[Order], digest: str) -> list[Order]:
    if any(r.request_hash != digest for r in rows):
        raise Conflict(
            "This idempotency key was already used with a different basket.",
            {"order_ids": [r.id for r in rows]},
            code="IDEMPOTENCY_CONFLICT",
        )
    if rows[0].response_status == 422:
        raise _basket_rejection(rows)
    return rows


def _basket_checks(failed: list[Any], reqs: list[OrderRequest]) -> list[dict[str, Any]]:
    """Failed checks with the legs they concern. The coordinator prefixes every per-order finding
    with ``"<symbol>: "``; a finding without one (buying power, daily loss, order count) is about the
    basket as a whole and names every leg."""
    out = []
    for f in failed:
        legs = [i for i, r in enumerate(reqs) if f.reason.startswith(f"{r.symbol}: ")]
        scope = "leg" if legs else "basket"
        out.append({**f.to_dict(), "scope": scope, "legs": legs or list(range(len(reqs)))})
    return out


def place_basket(
    user: Any,
    legs: list[dict[str, Any]],
    account_id: int | None = None,
    tag: str | None = None,
    idempotency_key: str | None = None,
) -> list[Order]:
    """Place ``legs`` all-or-none on one paper account: one transaction, one account lock, one risk
    decision for the combined effect (``RiskCoordinator.evaluate_basket``), one commit.

    A refused basket is stored with every leg ``rejected`` (each carrying every failed check) and
    raises RiskRejected. Invalid input raises ValidationFailed with ``fields.legs.<i>.<field>`` and
    stores nothing; a leg the broker cannot place rolls the whole basket back. ``idempotency_key``
    covers the whole basket (the legs are recorded as ``<key>/<i>``); a retry returns the same rows.
    Legs may carry ``account_id`` (all the same), ``tag`` (default: ``tag``) and ``strategy_id``.
    """
    if not isinstance(legs, list) or not legs:
        raise _fields_error("A basket needs legs.", {"legs": "At least one leg is required."})
    if len(legs) > MAX_BASKET_LEGS:
        raise _fields_error("Too many legs.", {"legs": f"At most {MAX_BASKET_LEGS} legs."})
    key = idempotency_key
    if key is not None and not 0 < len(key) <= MAX_BASKET_KEY:
        raise _fields_error(
            "Invalid idempotency key.", {"idempotency_key": f"1 to {MAX_BASKET_KEY} characters."}
        )
    errors: dict[int, dict[str, list[str]]] = {i: e for i, leg in enumerate(legs) if (e := _leg_errors(leg))}
    if errors:
        raise ValidationFailed("Basket validation failed.", {"fields": {"legs": errors}})
    if account_id is None:
        named = {leg["account_id"] for leg in legs if leg.get("account_id") is not None}
        account_id = named.pop() if len(named) == 1 else None
    mixed = {
        i: {"account_id": ["Every leg must use the basket's account."]}
        for i, leg in enumerate(legs)
        if leg.get("account_id") is not None and leg["account_id"] != account_id
    }
    if mixed:
        raise ValidationFailed("Basket validation failed.", {"fields": {"legs": mixed}})
    datas = [{**leg, "tag": leg.get("tag") or tag} for leg in legs]
    for d in datas:
        for name in ("price", "trigger_price"):
            if d.get(name) is not None:
                d[name] = Decimal(str(d[name]))
    if key or account_id is not None:
        acct = resolve_account(user, account_id)  # ownership (404) before anything else
        account_id = acct.id
        if key:
            existing = _basket_rows(acct.id, key)
            if existing:
                return _basket_replay(existing, _basket_hash(datas, acct.id))

    prepared: list[tuple[Any, OrderRequest]] = []
    for i, d in enumerate(datas):
        try:
            prepared.append(_prepare(d, _leg_key(key, i)))
        except ValidationFailed as exc:
            errors[i] = exc.details.get("fields", {})
    if errors:
        raise ValidationFailed("Basket validation failed.", {"fields": {"legs": errors}})
    from backend.services import market_data

    symbols = sorted({ins.symbol for ins, _ in prepared})
    quotes = {q.symbol.upper(): q for q in market_data.quotes(symbols)}
    missing = [i for i, (ins, _) in enumerate(prepared) if ins.symbol not in quotes]
    if missing:
        raise BrokerUnavailable(
            f"No quote available for {', '.join(sorted({prepared[i][0].symbol for i in missing}))}.",
            {"legs": missing},
        )
    for i, (ins, req) in enumerate(prepared):
        try:
            _validate(req, ins, quotes[ins.symbol].ltp)
        except ValidationFailed as exc:
            errors[i] = exc.details.get("fields", {})
    if errors:
        raise ValidationFailed("Basket validation failed.", {"fields": {"legs": errors}})
    return _place_basket_locked(user, account_id, prepared, quotes, key, datas)


def _place_basket_locked(
    user: Any,
    account_id: int | None,
    prepared: list[tuple[Any, OrderRequest]],
    quotes: dict[str, Quote],
    key: str | None,
    datas: list[dict[str, Any]],
) -> list[Order]:
    events = Events()
    digest = ""
    rejected: list[Order] | None = None
    try:
        acct, global_kill = _lock_for_order(user, account_id)
        account_id = acct.id
        if acct.mode != "paper":
            # a live broker cannot take back a filled leg, so all-or-none holds only on paper
            raise _fields_error(
                "Baskets are placed on paper accounts only.",
                {"account_id": "Basket placement is all-or-none only on a paper account."},
            )
        digest = _basket_hash(datas, acct.id)
        if key:
            existing = _basket_rows(acct.id, key)  # a concurrent retry may have won the race for the lock
            if existing:
                db.session.commit()
                return _basket_replay(existing, digest)
        positions: list[Position] = []
        ltp = {s: q.ltp for s, q in quotes.items()}
        snap, limits = snapshot(acct, ltp, rows=positions, global_kill=global_kill)
        reqs = [req for _, req in prepared]
        instruments = {ins.symbol: ins for ins, _ in prepared}
        coord = coordinator()
        decision = coord.evaluate_basket(reqs, instruments, ltp, snap, limits)
        impacts = coord.project(reqs, instruments, ltp, snap, limits)  # per-leg cash to reserve
        rows = [
            _new_row(
                acct,
                req,
                req.client_order_id,
                digest,
                datas[i].get("strategy_id"),
                charges.total if (charges := decision.charges[i]) else Decimal(0),
                impacts[i].cash_needed if decision.allowed else None,
            )
            for i, req in enumerate(reqs)
        ]
        db.session.add_all(rows)
        db.session.flush()
        if not decision.allowed:
            checks = _basket_checks(decision.failed, reqs)
            message = f"basket rejected: {_reason(decision.failed)}"
            for row in rows:
                _reject(row, checks, message, events)
            db.session.commit()
            rejected = rows
        else:
            broker = resolve_broker(acct, quotes, events)
            broker.positions = {p.symbol: p for p in positions}
            for i, (row, req) in enumerate(zip(rows, reqs, strict=True)):
                try:
                    _send(broker, acct, row, req)
                except DomainError as exc:
                    raise type(exc)(
                        f"Basket leg {i} ({req.symbol}) could not be placed, so no leg was: {exc.message}",
                        {**exc.details, "leg": i, "symbol": req.symbol},
                        code=exc.code,
                    ) from exc
            _count_orders(acct, limits, len(rows))
            for row in rows:
                settle_numerics(row)
            commit_keeping(user, *rows)
    except IntegrityError:
        db.session.rollback()
        if key and account_id is not None:
            existing = _basket_rows(account_id, key)
            if existing:
                return _basket_replay(existing, digest)
        raise
    except Exception:
        db.session.rollback()
        raise
    events.send()
    if rejected is not None:
        raise _basket_rejection(rejected)
    return rows


def _owned_order(user: Any, order_id: int) -> Order:
    row = db.session.get(Order, order_id)
    if row is None or row.user_id != user.id:
        raise NotFound("Order not found.", {"order_id": order_id}, code="ORDER_NOT_FOUND")
    return row


def get_order(user: Any, order_id: int) -> Order:
    return _owned_order(user, order_id)


def list_orders(user: Any, filters: dict[str, Any], limit: int, cursor: dict | None) -> Page:
    stmt = select(Order).where(Order.user_id == user.id)
    if filters.get("account_id") is not None:
        stmt = stmt.where(Order.account_id == filters["account_id"])
    if filters.get("status"):
        stmt = stmt.where(Order.status.in_(filters["status"]))
    if filters.get("symbol"):
        stmt = stmt.where(Order.symbol == filters["symbol"].upper())
    if filters.get("from_") is not None:
        stmt = stmt.where(Order.created_at >= filters["from_"])
    if filters.get("to") is not None:
        stmt = stmt.where(Order.created_at < filters["to"])
    return keyset_page(stmt, Order.id, limit, cursor)


def order_trades(user: Any, order_id: int) -> list[Trade]:
    row = _owned_order(user, order_id)
    return list(db.session.scalars(select(Trade).where(Trade.order_id == row.id).order_by(Trade.id)))


def modify_order(user: Any, order_id: int, changes: dict[str, Any]) -> Order:
    """Change price, quantity or trigger of a working order; risk is re-checked for the new terms."""
    row = _owned_order(user, order_id)
    events = Events()
    try:
        acct = lock_account(row.account_id)
        row = db.session.get(Order, order_id, populate_existing=True)
        if row.status not in ("open", "trigger_pending", "partially_filled"):
            raise Conflict(
                "Only a working order can be modified.", {"status": row.status}, code="ORDER_NOT_MODIFIABLE"
            )
        ins = _instrument(row.symbol)
        new_qty = changes.get("quantity", row.quantity)
        if new_qty is not None and new_qty <= row.filled_quantity:
            raise _fields_error(
                "Quantity too small.", {"quantity": f"Must exceed the filled {row.filled_quantity}."}
            )
        data = {
            "symbol": row.symbol,
            "side": row.side,
            "type": row.type,
            "product": row.product,
            "validity": row.validity,
            "quantity": new_qty,
            "price": changes.get("price", row.price),
            "trigger_price": changes.get("trigger_price", row.trigger_price),
        }
        full = _build_request(data, row.client_order_id)
        quote = _quote(ins.symbol)
        _validate(full, ins, quote.ltp if row.status == "trigger_pending" else None)
        rest = replace(full, quantity=new_qty - row.filled_quantity)
        snap, limits = snapshot(acct, {ins.symbol: quote.ltp}, exclude_order=row)
        # a modification is not a new order for the day's order count
        snap = replace(
            snap, breaker=replace(snap.breaker, orders_today=max(snap.breaker.orders_today - 1, 0))
        )
        decision = coordinator().evaluate(rest, ins, quote.ltp, snap, limits)
        decision.raise_if_rejected()
        broker = resolve_broker(acct, {ins.symbol: quote}, events)
        broker.modify_order(
            str(acct.id),
            _broker_ref(acct, row),
            OrderModification(quantity=new_qty, price=full.price, trigger_price=full.trigger_price),
        )
        row.reserved_cash = decision.cash_required
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    events.send()
    return row


def _broker_ref(acct: TradingAccount, row: Order) -> str:
    """The id the account's broker knows the order by: Upstox's order id, or our row id on paper."""
    if acct.mode == "paper":
        return str(row.id)
    if not row.broker_order_id:
        raise Conflict(
            "The broker has not acknowledged this order yet; retry shortly.", code="ORDER_NOT_ACKNOWLEDGED"
        )
    return row.broker_order_id


def _cancel_locked(acct: TradingAccount, row: Order, events: Events) -> None:
    broker = resolve_broker(acct, None, events)
    broker.cancel_order(str(acct.id), _broker_ref(acct, row))


def cancel_order(user: Any, order_id: int) -> Order:
    row = _owned_order(user, order_id)
    events = Events()
    try:
        acct = lock_account(row.account_id)
        row = db.session.get(Order, order_id, populate_existing=True)
        _cancel_locked(acct, row, events)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    events.send()
    return row


def cancel_all(user: Any, account_id: int | None, symbol: str | None) -> list[Order]:
    acct = resolve_account(user, account_id)
    events = Events()
    try:
        acct = lock_account(acct.id)
        stmt = select(Order).where(Order.account_id == acct.id, is_working())
        if symbol:
            stmt = stmt.where(Order.symbol == symbol.upper())
        rows = list(db.session.scalars(stmt.order_by(Order.id).execution_options(populate_existing=True)))
        for row in rows:
            _cancel_locked(acct, row, events)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    events.send()
    return rows


# --------------------------------------------------------------------------- ticks


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
                .where(Order.account_id == account_id, Order.symbol == symbol, is_working())
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
            ins = _instrument(symbol)
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
            _place_locked(_SystemUser(user_id), account_id, exit_req, ins, quote, None, None)
            exits += 1
        except RiskRejected:
            exits += 1  # stored as rejected with its reasons; the trader sees why
        except Exception:  # noqa: BLE001
            db.session.rollback()
            log.exception("stop exit failed", extra={"account_id": account_id, "symbol": symbol})
    return exits


class _SystemUser:
    def __init__(self, user_id: int) -> None:
        self.id = user_id
        self.role = "system"


def on_tick(tick: Any) -> None:
    """Tick-bus callback: match resting orders, then protective stops."""
    match_tick(tick)
    check_stops_tick(tick)


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
