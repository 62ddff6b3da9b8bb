"""Live (broker) orders sent exactly once.

The order row and its idempotency key are committed, in ``submitting``, in their own transaction
**before** the broker is called. A timeout, connection reset or 5xx leaves the row ``unknown``; nothing
rolls it back. Whoever meets the row next (a retry with the same key on any worker or machine, or the
background resolver) settles it by looking the order up by its tag in the broker's order book, polling
for ``UPSTOX_ORDER_LOOKUP_GRACE_SECONDS`` because an accepted order can reach the book late. Only a
confirmed absence (the book read successfully for the whole grace period, the tag never in it) allows
one resend, claimed by an atomic ``unknown -> submitting`` update so two workers never both send.

The background resolver does not resend (the user may have moved on): a row still absent after
``UPSTOX_UNKNOWN_SETTLE_AFTER_SECONDS`` is settled ``rejected``. Every settlement emits the same
``order_update`` Socket.IO event as any other order change.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import Flask, current_app
from sqlalchemy import delete, select, update

from backend.domain.broker.base import BrokerOrder
from backend.domain.errors import BrokerUnavailable, DomainError, ValidationFailed
from backend.domain.orders.state import can_transition, is_terminal
from backend.domain.orders.types import OrderRequest, OrderStatus
from backend.extensions import db
from backend.models.trading import UNRESOLVED_STATUSES, Order, TradingAccount
from backend.services.trading.common import Events, commit_keeping, settle_numerics
from backend.services.trading.orders.brokers import resolve_broker
from backend.services.trading.paper_broker import request_of

log = logging.getLogger(__name__)

SUBMITTING = OrderStatus.SUBMITTING.value
UNKNOWN = OrderStatus.UNKNOWN.value


@dataclass(frozen=True)
class LiveSettings:
    grace_seconds: float = 10.0
    poll_interval: float = 1.0
    submitting_stale_seconds: float = 60.0
    settle_after_seconds: float = 120.0

    @classmethod
    def from_config(cls, cfg: Any) -> LiveSettings:
        return cls(
            grace_seconds=float(cfg.get("UPSTOX_ORDER_LOOKUP_GRACE_SECONDS", cls.grace_seconds)),
            poll_interval=float(cfg.get("UPSTOX_ORDER_LOOKUP_INTERVAL_SECONDS", cls.poll_interval)),
            submitting_stale_seconds=float(
                cfg.get("UPSTOX_SUBMITTING_STALE_SECONDS", cls.submitting_stale_seconds)
            ),
            settle_after_seconds=float(
                cfg.get("UPSTOX_UNKNOWN_SETTLE_AFTER_SECONDS", cls.settle_after_seconds)
            ),
        )


def _settings() -> LiveSettings:
    return LiveSettings.from_config(current_app.config)


def _now() -> datetime:
    return datetime.now(UTC)


def broker_tag(row: Order) -> str:
    """The tag the broker knows this order by (our client_order_id, else our row id)."""
    return row.client_order_id or f"oid:{row.id}"


# --------------------------------------------------------------------------- applying the broker's view


def apply_broker_order(row: Order, remote: BrokerOrder) -> list[tuple[str, Any, Any]]:
    """Take the broker's view of one order onto ``row``; status moves only through the state machine.

    Returns the (field, ours, broker's) differences applied. An illegal move (the broker says ``open``
    for an order we hold ``filled``) is logged and the status left as is; the other fields still follow
    the broker, which is the truth for a live account."""
    diffs: list[tuple[str, Any, Any]] = []
    if remote.order_id and row.broker_order_id != remote.order_id:
        diffs.append(("broker_order_id", row.broker_order_id, remote.order_id))
        row.broker_order_id = remote.order_id
    if remote.raw_status and row.broker_status != remote.raw_status[:64]:
        row.broker_status = remote.raw_status[:64]
    if remote.raw_product and row.broker_product != remote.raw_product[:16]:
        row.broker_product = remote.raw_product[:16]
    current, new = OrderStatus(row.status), remote.status
    if current is not new or new is OrderStatus.OTHER:
        if can_transition(current, new):
            if current is not new:
                diffs.append(("status", current.value, new.value))
            row.status = new.value
        else:
            log.warning(
                "broker status not applied (illegal transition)",
                extra={"order_id": row.id, "from": current.value, "to": new.value},
            )
    for name, theirs in (("filled_quantity", remote.filled_quantity), ("quantity", remote.quantity)):
        mine = getattr(row, name)
        if theirs and mine != theirs:
            diffs.append((name, mine, theirs))
            setattr(row, name, theirs)
    if remote.average_price is not None and (
        row.average_price is None or Decimal(row.average_price) != Decimal(remote.average_price)
    ):
        diffs.append(("average_price", row.average_price, remote.average_price))
        row.average_price = remote.average_price
    if remote.status_message and remote.status is OrderStatus.REJECTED:
        row.status_message = remote.status_message
    if is_terminal(OrderStatus(row.status)):
        row.reserved_cash = Decimal(0)
    return diffs


# --------------------------------------------------------------------------- look-up


@dataclass(frozen=True)
class Lookup:
    """``found`` the broker's order; ``absent`` True only when every read of the book succeeded."""

    found: BrokerOrder | None
    absent: bool


def lookup_by_tag(
    broker: Any, account: str, tag: str, grace: float, interval: float, sleep: Any = time.sleep
) -> Lookup:
    """Poll the broker's order book for ``tag`` for up to ``grace`` seconds.

    A failed read (timeout, circuit open, expired token) is not evidence of absence: the result is then
    neither found nor absent, and the order stays ``unknown``."""
    deadline = time.monotonic() + max(0.0, grace)
    reads_ok = True
    while True:
        try:
            found = broker.find_by_tag(account, tag)
        except DomainError as exc:
            log.warning("order book look-up failed", extra={"tag": tag, "code": exc.code})
            found, reads_ok = None, False
        if found is not None:
            return Lookup(found, False)
        if time.monotonic() + interval > deadline:
            return Lookup(None, reads_ok)
        sleep(interval)


# --------------------------------------------------------------------------- sending


def submit(
    user: Any, acct: TradingAccount, row: Order, req: OrderRequest, events: Events
) -> tuple[Order, int]:
    """Commit ``row`` in ``submitting`` (inside the caller's locked transaction), then call the broker."""
    row.status = SUBMITTING
    row.status_message = "sending to the broker"
    settle_numerics(row)
    db.session.flush()
    events.order(row)
    events.render()
    commit_keeping(user, row)  # the row and its key are durable before anything leaves the process
    events.send()
    return send(acct, row, req)


def _unknown_error(row: Order, exc: DomainError | None = None) -> BrokerUnavailable:
    return BrokerUnavailable(
        "The broker did not confirm the order and it is not in its order book yet. It was not sent "
        "again: retry with the same client_order_id (the book is checked first) or watch the order; "
        "it is settled in the background.",
        details={
            "outcome": "unknown",
            "order_id": row.id,
            "status": row.status,
            "tag": broker_tag(row),
            **({"cause": exc.code} if exc is not None else {}),
        },
    )


def _commit_with_event(row: Order) -> None:
    events = Events()
    settle_numerics(row)
    db.session.flush()
    events.order(row)
    events.render()
    db.session.commit()
    events.send()


def send(acct: TradingAccount, row: Order, req: OrderRequest, keep_unsent: bool = False) -> tuple[Order, int]:
    """Call the broker for a committed ``submitting`` row and record what happened.

    ``keep_unsent``: a basket leg or a slice, whose row belongs to a group under one key; when nothing
    was sent it stays, ``unknown``, for the group's retry (or the resolver) instead of being dropped."""
    broker = resolve_broker(acct)
    tag = broker_tag(row)
    account = str(acct.id)
    try:
        placed = broker.place_order(account, replace(req, client_order_id=tag))
    except BrokerUnavailable as exc:
        if exc.details.get("outcome") != "unknown":
            # circuit open: nothing left the process, so the record goes and the key is free again
            _not_sent(row, exc) if keep_unsent else _forget(row)
            raise
        row.status = UNKNOWN
        row.status_message = "the broker did not answer; looking the order up by its tag"
        _commit_with_event(row)
        cfg = _settings()
        got = lookup_by_tag(broker, account, tag, cfg.grace_seconds, cfg.poll_interval)
        if got.found is not None:
            apply_broker_order(row, got.found)
            _commit_with_event(row)
            log.warning("placement outcome recovered by tag", extra={"order_id": row.id, "tag": tag})
            return row, 201
        raise _unknown_error(row, exc) from exc
    except ValidationFailed as exc:
        # the broker refused it (insufficient funds, bad field): final, and kept for the record
        row.status = OrderStatus.REJECTED.value
        row.status_message = exc.message[:500]
        row.response_status = 422
        row.reserved_cash = Decimal(0)
        _commit_with_event(row)
        raise
    except DomainError as exc:
        # expired token, rate limited before sending: nothing was placed, the key is free again
        _not_sent(row, exc) if keep_unsent else _forget(row)
        raise
    # the portfolio feed may have applied the broker's update before this answer came back: re-read
    # the row and move it only forwards, so a late "pending" never overwrites "filled"
    db.session.refresh(row, with_for_update=True)
    if not row.broker_order_id:
        row.broker_order_id = placed.order_id
    current = OrderStatus(row.status)
    if current in (OrderStatus.SUBMITTING, OrderStatus.UNKNOWN):
        row.status = placed.status.value if can_transition(current, placed.status) else "pending"
        row.status_message = placed.status_message or ""
        if placed.raw_status:
            row.broker_status = placed.raw_status[:64]
    _commit_with_event(row)
    return row, 201


def _not_sent(row: Order, exc: DomainError) -> None:
    """A grouped row whose call certainly sent nothing: ``unknown`` (the book is checked before any
    resend, which costs one look-up and never a duplicate), kept with its key."""
    db.session.rollback()
    row = db.session.get(Order, row.id, populate_existing=True)
    row.status = UNKNOWN
    row.status_message = f"not sent ({exc.code}); a retry with the same key checks the broker's book first"
    _commit_with_event(row)


# --------------------------------------------------------------------------- groups (baskets, slices)


def submit_many(
    user: Any, acct: TradingAccount, rows: list[Order], reqs: list[OrderRequest], events: Events
) -> list[Order]:
    """Basket legs or slices: every row is committed in ``submitting`` in one transaction (with its
    key) before the first broker call, then each is sent exactly like a single order.

    The first leg without a confirmed placement stops the group: if the broker refused it, the legs
    after it are ``rejected`` unsent; if its outcome is unknown (or nothing could be sent), they are
    left ``unknown`` unsent, so a retry with the group's key looks each up by its tag and sends only
    what the broker does not hold. Raises that leg's error, naming the leg and every row."""
    for row in rows:
        row.status = SUBMITTING
        row.status_message = "sending to the broker"
        settle_numerics(row)
    db.session.flush()
    for row in rows:
        events.order(row)
    events.render()
    commit_keeping(user, *rows)  # every leg and its key durable before anything leaves the process
    events.send()
    for i, (row, req) in enumerate(zip(rows, reqs, strict=True)):
        try:
            send(acct, row, req, keep_unsent=True)
        except DomainError as exc:
            _hold(rows[i + 1 :], i, refused=isinstance(exc, ValidationFailed))
            ids = [r.id for r in rows]
            raise type(exc)(
                f"Leg {i} ({req.symbol}) was not confirmed by the broker; legs before it were placed, "
                f"legs after it were not sent: {exc.message}",
                {**exc.details, "leg": i, "symbol": req.symbol, "order_ids": ids},
                code=exc.code,
            ) from exc
    return rows


def _hold(rest: list[Order], leg: int, refused: bool) -> None:
    for row in rest:
        row = db.session.get(Order, row.id, populate_existing=True)
        if refused:
            row.status = OrderStatus.REJECTED.value
            row.status_message = f"not sent: leg {leg} was refused by the broker"
            row.response_status = 422
            row.reserved_cash = Decimal(0)
        else:
            row.status = UNKNOWN
            row.status_message = (
                f"not sent: leg {leg} got no confirmed answer; a retry with the same key checks the "
                "broker's book, then sends it once"
            )
        _commit_with_event(row)


def resolve_group(rows: list[Order]) -> None:
    """A retry of a basket or sliced order: settle each unresolved row in order (``resolve_retry``:
    look up by tag, resend once only on confirmed absence). Raises the first unknown outcome."""
    for row in rows:
        if row.status in UNRESOLVED_STATUSES:
            resolve_retry(row)


def _forget(row: Order) -> None:
    """Drop a row whose broker call certainly sent nothing, so a retry with its key sends afresh."""
    db.session.rollback()
    db.session.execute(
        delete(Order)
        .where(Order.id == row.id, Order.status == SUBMITTING)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


# --------------------------------------------------------------------------- a retry meets the row


def _claim_resend(row: Order, stale_before: datetime) -> bool:
    """Atomically move ``unknown`` (or a stale ``submitting``) to ``submitting``: one worker wins."""
    res = db.session.execute(
        update(Order)
        .where(
            Order.id == row.id,
            (Order.status == UNKNOWN) | ((Order.status == SUBMITTING) & (Order.updated_at < stale_before)),
        )
        .values(status=SUBMITTING, status_message="resending: not in the broker's book", updated_at=_now())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return res.rowcount == 1


def resolve_retry(row: Order) -> tuple[Order, int]:
    """A retry with the key of an unresolved live order: look it up, resend only on confirmed absence.

    Answers 201 with the order once the broker holds it, 202 while another worker is still sending."""
    cfg = _settings()
    acct = db.session.get(TradingAccount, row.account_id)
    stale_before = _now() - timedelta(seconds=cfg.submitting_stale_seconds)
    updated = row.updated_at if row.updated_at.tzinfo else row.updated_at.replace(tzinfo=UTC)
    if row.status == SUBMITTING and updated >= stale_before:
        db.session.commit()
        return row, 202  # another request is sending it right now
    broker = resolve_broker(acct)
    tag = broker_tag(row)
    db.session.commit()  # no transaction held open while polling the broker
    got = lookup_by_tag(broker, str(acct.id), tag, cfg.grace_seconds, cfg.poll_interval)
    row = db.session.get(Order, row.id, populate_existing=True)
    if got.found is not None:
        if row.status in UNRESOLVED_STATUSES:
            apply_broker_order(row, got.found)
            _commit_with_event(row)
        return row, 201
    if not got.absent:
        raise _unknown_error(row)
    if row.status not in UNRESOLVED_STATUSES:
        return row, row.response_status  # settled meanwhile by another worker
    if not _claim_resend(row, stale_before):
        row = db.session.get(Order, row.id, populate_existing=True)
        return row, 202
    row = db.session.get(Order, row.id, populate_existing=True)
    log.warning("order confirmed absent at the broker; sending once more", extra={"order_id": row.id})
    return send(acct, row, request_of(row))


# --------------------------------------------------------------------------- background resolver


def resolve_unknown_orders(now: datetime | None = None) -> dict[str, int]:
    """Settle ``unknown`` (and stale ``submitting``) live orders: found in the book -> the broker's status;
    absent for longer than ``UPSTOX_UNKNOWN_SETTLE_AFTER_SECONDS`` -> ``rejected``. Never resends."""
    cfg = _settings()
    now = now or _now()
    settle_before = now - timedelta(seconds=cfg.settle_after_seconds)
    stale_before = now - timedelta(seconds=cfg.submitting_stale_seconds)
    rows = db.session.scalars(
        select(Order)
        .join(TradingAccount, TradingAccount.id == Order.account_id)
        .where(
            TradingAccount.mode == "live",
            (Order.status == UNKNOWN) | ((Order.status == SUBMITTING) & (Order.updated_at < stale_before)),
        )
        .order_by(Order.id)
        .limit(200)
    ).all()
    out = {"checked": 0, "found": 0, "settled_absent": 0, "still_unknown": 0}
    targets = [(r.id, r.account_id, broker_tag(r)) for r in rows]
    db.session.commit()
    for order_id, account_id, tag in targets:
        out["checked"] += 1
        acct = db.session.get(TradingAccount, account_id)
        try:
            got = lookup_by_tag(resolve_broker(acct), str(account_id), tag, 0.0, cfg.poll_interval)
        except DomainError:
            got = Lookup(None, False)
        row = db.session.get(Order, order_id, populate_existing=True)
        if row is None or row.status not in UNRESOLVED_STATUSES:
            continue
        if got.found is not None:
            apply_broker_order(row, got.found)
            _commit_with_event(row)
            out["found"] += 1
            continue
        updated = row.updated_at if row.updated_at.tzinfo else row.updated_at.replace(tzinfo=UTC)
        if got.absent and updated < settle_before:
            res = db.session.execute(
                update(Order)
                .where(Order.id == order_id, Order.status == row.status)
                .values(
                    status=OrderStatus.REJECTED.value,
                    status_message="never reached the broker: not in its order book",
                    reserved_cash=Decimal(0),
                    response_status=422,
                )
                .execution_options(synchronize_session=False)
            )
            db.session.commit()
            if res.rowcount == 1:
                _commit_with_event(db.session.get(Order, order_id, populate_existing=True))
                out["settled_absent"] += 1
            continue
        out["still_unknown"] += 1
        db.session.commit()
    return out


def run_resolver(app: Flask, interval: float, stop: Any) -> None:
    """Background loop (one per process; every step is an atomic compare-and-set, so several agree)."""
    while not stop.wait(interval):
        with app.app_context():
            try:
                got = resolve_unknown_orders()
                if got["checked"]:
                    log.info("unknown live orders resolved", extra=got)
            except Exception:  # noqa: BLE001 - the loop must outlive a broker or database outage
                log.exception("unknown-order resolver failed")
            finally:
                db.session.remove()
