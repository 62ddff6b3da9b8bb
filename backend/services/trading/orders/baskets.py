"""Baskets: several legs judged together under one account lock and one risk decision.

On paper the legs are placed all-or-none in one transaction. On a live account (the broker cannot take
a filled leg back) every leg is recorded before the first broker call and sent exactly once, as a
single live order is (``live.submit_many``); a retry with the basket's key resolves the legs left
``unknown`` by looking them up by tag."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backend.domain.errors import (
    BrokerUnavailable,
    Conflict,
    DomainError,
    RiskRejected,
    ValidationFailed,
)
from backend.domain.market.types import Quote
from backend.domain.orders.types import OrderRequest, OrderType, Product, Side, Validity
from backend.extensions import db
from backend.models.trading import UNRESOLVED_STATUSES, Order, Position
from backend.observability import metrics
from backend.services.trading.accounts import (
    resolve_account,
)
from backend.services.trading.common import (
    Events,
    commit_keeping,
    settle_numerics,
)
from backend.services.trading.orders.brokers import resolve_broker
from backend.services.trading.orders.placement import (
    coordinator,
    count_orders,
    lock_for_order,
    new_row,
    reasons_text,
    reject_row,
    send_to_broker,
    snapshot,
    with_fno_prices,
)
from backend.services.trading.orders.prepare import (
    fields_error,
    prepare,
    request_hash,
    session_gate,
    validate_request,
)
from backend.services.trading.paper_broker import TradeTally

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
    if any(r.status in UNRESOLVED_STATUSES for r in rows):
        # a live basket whose legs were not all confirmed: each is looked up by its tag and sent only
        # if the broker does not hold it
        from backend.services.trading.orders import live

        live.resolve_group(rows)
        rows = _basket_rows(rows[0].account_id, (rows[0].client_order_id or "").rsplit("/", 1)[0])
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


def _session_gate_legs(mode: str, prepared: list[tuple[Any, OrderRequest]]) -> None:
    """Every leg passes its segment's session rule (MARKET outside the session: 422 on that leg)."""
    errors: dict[int, Any] = {}
    extra: dict[str, Any] = {}
    for i, (ins, req) in enumerate(prepared):
        try:
            session_gate(mode, ins, req)
        except ValidationFailed as exc:
            errors[i] = exc.details.get("fields", {})
            extra = {k: v for k, v in exc.details.items() if k != "fields"}
    if errors:
        raise ValidationFailed("Basket validation failed.", {"fields": {"legs": errors}, **extra})


@metrics.counts_rejections
def place_basket(
    user: Any,
    legs: list[dict[str, Any]],
    account_id: int | None = None,
    tag: str | None = None,
    idempotency_key: str | None = None,
) -> list[Order]:
    """Place ``legs`` on one account under one account lock and one risk decision for the combined
    effect (``RiskCoordinator.evaluate_basket``). Paper: all-or-none, one commit. Live: every leg
    recorded, then each sent exactly once (``live.submit_many``).

    A refused basket is stored with every leg ``rejected`` (each carrying every failed check) and
    raises RiskRejected. Invalid input raises ValidationFailed with ``fields.legs.<i>.<field>`` and
    stores nothing; a leg the broker cannot place rolls the whole basket back. ``idempotency_key``
    covers the whole basket (the legs are recorded as ``<key>/<i>``); a retry returns the same rows.
    Legs may carry ``account_id`` (all the same), ``tag`` (default: ``tag``) and ``strategy_id``.
    """
    if not isinstance(legs, list) or not legs:
        raise fields_error("A basket needs legs.", {"legs": "At least one leg is required."})
    if len(legs) > MAX_BASKET_LEGS:
        raise fields_error("Too many legs.", {"legs": f"At most {MAX_BASKET_LEGS} legs."})
    key = idempotency_key
    if key is not None and not 0 < len(key) <= MAX_BASKET_KEY:
        raise fields_error(
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
            prepared.append(prepare(d, _leg_key(key, i)))
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
            validate_request(req, ins, quotes[ins.symbol].ltp)
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
    rejected: RiskRejected | None = None
    try:
        acct, global_kill = lock_for_order(user, account_id)
        account_id = acct.id
        _session_gate_legs(acct.mode, prepared)
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
        snap = with_fno_prices(snap, instruments.values())
        coord = coordinator()
        decision = coord.evaluate_basket(reqs, instruments, ltp, snap, limits)
        impacts = coord.project(reqs, instruments, ltp, snap, limits)  # per-leg cash to reserve
        rows = [
            new_row(
                acct,
                req,
                req.client_order_id,
                digest,
                datas[i].get("strategy_id"),
                charges.total if (charges := decision.charges[i]) else Decimal(0),
                impacts[i].cash_needed if decision.allowed else None,
                impacts[i].margin,
            )
            for i, req in enumerate(reqs)
        ]
        db.session.add_all(rows)
        db.session.flush()
        if not decision.allowed:
            checks = _basket_checks(decision.failed, reqs)
            message = f"basket rejected: {reasons_text(decision.failed)}"
            for row in rows:
                reject_row(row, checks, message, events)
            rejected = _basket_rejection(rows)  # before the commit expires them (see place_locked)
            db.session.commit()
        elif acct.mode == "live":
            # A live broker cannot take a filled leg back, so a live basket is one risk decision and
            # every leg recorded before the first call, then each leg sent exactly once (orders/live.py).
            from backend.services.trading.orders import live

            count_orders(acct, limits, len(rows))
            return live.submit_many(user, acct, rows, reqs, events)
        else:
            broker = resolve_broker(acct, quotes, events)
            broker.loaded_positions = {(p.symbol, p.product): p for p in positions}
            broker.tally = TradeTally()  # the basket's closing legs are one trade for the breaker
            for i, (row, req) in enumerate(zip(rows, reqs, strict=True)):
                try:
                    send_to_broker(broker, acct, row, req)
                except DomainError as exc:
                    raise type(exc)(
                        f"Basket leg {i} ({req.symbol}) could not be placed, so no leg was: {exc.message}",
                        {**exc.details, "leg": i, "symbol": req.symbol},
                        code=exc.code,
                    ) from exc
            broker.tally.record(acct, events)
            count_orders(acct, limits, len(rows))
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
        raise rejected
    return rows
