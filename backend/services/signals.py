"""Signals from outside: a TradingView or Chartink alert becomes an order through a saved mapping.

The webhook URL carries a per-user token (only its SHA-256 is stored). A user may also set an HMAC
secret; then every call must carry ``X-Signature: <hex HMAC-SHA256 of the raw body>``. Each alert id
is processed once per user: the ``signals`` row is committed under a unique constraint *before* the
order service is called, and the order's ``client_order_id`` is derived from that row, so a repeat
(or a race between workers) answers with the original result and never places a second order.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from typing import Any

from cryptography.fernet import Fernet, MultiFernet
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backend.domain.errors import AuthenticationFailed, Conflict, DomainError, NotFound, ValidationFailed
from backend.extensions import db
from backend.models import User
from backend.models.base import utcnow
from backend.models.signals import Signal, SignalMapping, SignalWebhook
from backend.models.trading import Order
from backend.observability.metrics import SIGNALS
from backend.services import audit
from backend.services.pagination import Page, keyset_page

log = logging.getLogger(__name__)

MAPPING_FIELDS = ("name", "account_id", "symbol", "side", "quantity", "product", "order_type")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _fernet() -> MultiFernet:
    keys = current_app.config["TOKEN_ENCRYPTION_KEYS"]
    return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])


# --- webhook credentials ----------------------------------------------------------------------


def webhook_info(user: Any) -> dict:
    row = db.session.get(SignalWebhook, user.id)
    return {
        "configured": row is not None,
        "hmac_required": bool(row and row.hmac_secret_encrypted),
        "rotated_at": row.updated_at if row else None,
        "token": None,
        "hmac_secret": None,
    }


def rotate_token(user: Any) -> dict:
    """Create or replace the webhook token; the old one stops working at once. Shown only here."""
    plain = "sig_" + secrets.token_urlsafe(32)
    row = db.session.get(SignalWebhook, user.id)
    if row is None:
        row = SignalWebhook(user_id=user.id, token_hash=token_hash(plain))
        db.session.add(row)
    else:
        row.token_hash = token_hash(plain)
        row.updated_at = utcnow()
    audit.record("signals.token.rotate", target_type="user", target_id=user.id)
    db.session.commit()
    info = webhook_info(user)
    info["token"] = plain
    return info


def set_hmac_secret(user: Any, enabled: bool) -> dict:
    """Create/replace (``enabled``) or remove the HMAC secret; a new secret is shown only here."""
    row = db.session.get(SignalWebhook, user.id)
    if row is None:
        raise Conflict("Create a webhook token first (POST /signals/token/rotate).", code="SIGNAL_NO_TOKEN")
    plain = "whsec_" + secrets.token_urlsafe(32) if enabled else None
    row.hmac_secret_encrypted = _fernet().encrypt(plain.encode()).decode() if plain else None
    row.updated_at = utcnow()
    audit.record(
        "signals.hmac.set" if enabled else "signals.hmac.clear", target_type="user", target_id=user.id
    )
    db.session.commit()
    info = webhook_info(user)
    info["hmac_secret"] = plain
    return info


# --- mappings -----------------------------------------------------------------------------------


def list_mappings(user: Any, limit: int, cursor: dict | None) -> Page:
    return keyset_page(
        select(SignalMapping).where(SignalMapping.user_id == user.id), SignalMapping.id, limit, cursor
    )


def get_mapping(user: Any, mapping_id: int) -> SignalMapping:
    row = db.session.get(SignalMapping, mapping_id)
    if row is None or row.user_id != user.id:
        raise NotFound(f"Signal mapping {mapping_id} not found.")
    return row


def _check_account(user: Any, account_id: int | None) -> None:
    from backend.services.trading.accounts import resolve_account

    if account_id is not None:
        resolve_account(user, account_id)  # NotFound for someone else's account


def _name_taken(user: Any, name: str, mapping_id: int | None = None) -> None:
    stmt = select(SignalMapping.id).where(SignalMapping.user_id == user.id, SignalMapping.name == name)
    found = db.session.scalar(stmt)
    if found is not None and found != mapping_id:
        raise ValidationFailed(
            f"A mapping named '{name}' exists.", {"fields": {"name": ["Must be unique among your mappings."]}}
        )


def create_mapping(user: Any, data: dict) -> SignalMapping:
    _check_account(user, data.get("account_id"))
    _name_taken(user, data["name"])
    row = SignalMapping(user_id=user.id, **{k: data.get(k) for k in MAPPING_FIELDS})
    db.session.add(row)
    db.session.flush()
    audit.record("signals.mapping.create", target_type="signal_mapping", target_id=row.id, details=data)
    db.session.commit()
    return row


def update_mapping(user: Any, mapping_id: int, data: dict) -> SignalMapping:
    row = get_mapping(user, mapping_id)
    if "account_id" in data:
        _check_account(user, data["account_id"])
    if "name" in data:
        _name_taken(user, data["name"], row.id)
    for name in MAPPING_FIELDS:
        if name in data:
            setattr(row, name, data[name])
    audit.record("signals.mapping.update", target_type="signal_mapping", target_id=row.id, details=data)
    db.session.commit()
    return row


def delete_mapping(user: Any, mapping_id: int) -> None:
    row = get_mapping(user, mapping_id)
    db.session.delete(row)
    audit.record("signals.mapping.delete", target_type="signal_mapping", target_id=mapping_id)
    db.session.commit()


def list_signals(user: Any, status: str | None, limit: int, cursor: dict | None) -> Page:
    stmt = select(Signal).where(Signal.user_id == user.id)
    if status:
        stmt = stmt.where(Signal.status == status)
    return keyset_page(stmt, Signal.id, limit, cursor)


# --- the webhook --------------------------------------------------------------------------------


def authenticate_webhook(token: str, raw_body: bytes, signature: str | None) -> User:
    """The token's owner; checks the HMAC signature when the owner configured a secret."""
    row = db.session.scalar(select(SignalWebhook).where(SignalWebhook.token_hash == token_hash(token)))
    user = db.session.get(User, row.user_id) if row is not None else None
    if user is None or not user.is_active:
        # the same answer for a never-issued, rotated-out or disabled owner's token
        raise NotFound("Unknown webhook token.", code="SIGNAL_TOKEN_UNKNOWN")
    if row.hmac_secret_encrypted:
        secret = _fernet().decrypt(row.hmac_secret_encrypted.encode())
        expected = hmac.new(secret, raw_body, hashlib.sha256).hexdigest()
        sent = (signature or "").strip().lower().removeprefix("sha256=")
        if not hmac.compare_digest(expected.encode(), sent.encode()):
            SIGNALS.labels("unknown", "bad_signature").inc()
            log.warning("signal webhook: bad or missing X-Signature for user %s", user.id)
            raise AuthenticationFailed("X-Signature does not match the body.", code="SIGNAL_BAD_SIGNATURE")
    return user


def invalid_body(user: Any, source: str, payload: dict, messages: dict) -> None:
    """A body that does not load (missing/ill-typed fields): kept, logged, counted; raises a 422."""
    names = ", ".join(sorted(str(k) for k in messages))
    _invalid(
        user,
        source,
        payload,
        ValidationFailed(
            f"Invalid alert body: check field(s) {names}.", {"fields": messages}, code="SIGNAL_BODY_MISMATCH"
        ),
        None,
    )


def _invalid(user: Any, source: str, payload: dict, exc: ValidationFailed, mapping_id: int | None) -> None:
    """Keep, log and count a body that does not match; no order. Raises ``exc``."""
    db.session.rollback()
    db.session.add(
        Signal(
            user_id=user.id,
            alert_id=None,
            source=source,
            mapping_id=mapping_id,
            status="invalid",
            error_code=exc.code,
            error_message=exc.message,
            payload=payload,
        )
    )
    audit.record(
        "signals.invalid",
        actor_id=user.id,
        actor_email=user.email,
        target_type="user",
        target_id=user.id,
        details={"source": source, "error": exc.message, "fields": exc.details.get("fields")},
    )
    db.session.commit()
    SIGNALS.labels(source, "invalid").inc()
    log.info("signal webhook: invalid %s body for user %s: %s", source, user.id, exc.message)
    raise exc


def _mapping_by_name(user: Any, name: str) -> SignalMapping | None:
    return db.session.scalar(
        select(SignalMapping).where(SignalMapping.user_id == user.id, SignalMapping.name == name)
    )


def _limit_price(mapping: SignalMapping, alert: dict) -> Any:
    """The alert's own price, or (Chartink) the trigger price of the mapping's symbol."""
    return alert.get("price") or (alert.get("prices") or {}).get(mapping.symbol.upper())


def _order_body(mapping: SignalMapping, alert: dict, key: str) -> dict:
    body: dict[str, Any] = {
        "account_id": mapping.account_id,
        "symbol": mapping.symbol,
        "side": mapping.side,
        "type": mapping.order_type,
        "product": mapping.product,
        "quantity": mapping.quantity,
        "client_order_id": key,
        "tag": "signal",
    }
    if mapping.order_type == "LIMIT":
        body["price"] = _limit_price(mapping, alert)
    return body


def receive(user: Any, alert: dict, payload: dict) -> tuple[Signal, bool]:
    """Process one loaded alert (``source``, ``mapping``, ``alert_id``, optional ``price``/``symbols``).

    Returns ``(signal, created)``; ``created`` is False for a repeat of an alert id.
    """
    source = alert["source"]
    mapping = _mapping_by_name(user, alert["mapping"])
    if mapping is None:
        _invalid(
            user,
            source,
            payload,
            ValidationFailed(
                f"No signal mapping named '{alert['mapping']}'.",
                {"fields": {alert["mapping_field"]: ["No mapping with this name."]}},
                code="SIGNAL_MAPPING_UNKNOWN",
            ),
            None,
        )
    if mapping.order_type == "LIMIT" and _limit_price(mapping, alert) is None:
        _invalid(
            user,
            source,
            payload,
            ValidationFailed(
                "This mapping places LIMIT orders: the alert must carry a price.",
                {"fields": {"price": ["Required by this mapping (LIMIT)."]}},
                code="SIGNAL_BODY_MISMATCH",
            ),
            mapping.id,
        )
    symbols = alert.get("symbols")
    if symbols is not None and mapping.symbol.upper() not in symbols:
        _invalid(
            user,
            source,
            payload,
            ValidationFailed(
                f"The alert's stocks do not include the mapping's symbol {mapping.symbol}.",
                {"fields": {"stocks": [f"Must include {mapping.symbol}."]}},
                code="SIGNAL_BODY_MISMATCH",
            ),
            mapping.id,
        )
    existing = _by_alert(user.id, alert["alert_id"])
    if existing is not None:
        SIGNALS.labels(source, "duplicate").inc()
        return existing, False
    signal = Signal(
        user_id=user.id,
        alert_id=alert["alert_id"],
        source=source,
        mapping_id=mapping.id,
        status="received",
        payload=payload,
    )
    db.session.add(signal)
    try:
        db.session.commit()  # the claim on this alert id, before any order exists
    except IntegrityError:
        db.session.rollback()  # another worker claimed it first
        existing = _by_alert(user.id, alert["alert_id"])
        if existing is None:
            raise
        SIGNALS.labels(source, "duplicate").inc()
        return existing, False
    return _place(user, signal, mapping, alert), True


def _by_alert(user_id: int, alert_id: str) -> Signal | None:
    return db.session.scalar(
        select(Signal)
        .where(Signal.user_id == user_id, Signal.alert_id == alert_id)
        .execution_options(populate_existing=True)
    )


def _place(user: Any, signal: Signal, mapping: SignalMapping, alert: dict) -> Signal:
    from backend.services.trading.orders import place_order

    signal_id, mapping_id = signal.id, mapping.id
    key = f"signal-{signal_id}"
    body = _order_body(mapping, alert, key)
    order_id, order_status, error = None, None, None
    try:
        order, _status = place_order(user, body)
        order_id, order_status = order.id, order.status
    except DomainError as exc:
        db.session.rollback()
        error = exc
        # a risk rejection is stored as a rejected order before the error is raised
        stored = db.session.scalar(
            select(Order).where(Order.user_id == user.id, Order.client_order_id == key)
        )
        if stored is not None:
            order_id, order_status = stored.id, stored.status
    signal = db.session.get(Signal, signal_id)
    signal.order_id, signal.order_status = order_id, order_status
    signal.status = "placed" if order_id is not None else "failed"
    if error is not None:
        signal.error_code, signal.error_message = error.code, error.message
    audit.record(
        "signals.receive",
        actor_id=user.id,
        actor_email=user.email,
        target_type="signal",
        target_id=signal_id,
        details={
            "source": signal.source,
            "alert_id": signal.alert_id,
            "mapping_id": mapping_id,
            "order_id": order_id,
            "order_status": order_status,
            "status": signal.status,
            "error": error.code if error else None,
        },
    )
    db.session.commit()
    SIGNALS.labels(signal.source, signal.status).inc()
    log.info("signal %s (%s) -> %s order %s", signal_id, signal.source, signal.status, order_id)
    return signal
