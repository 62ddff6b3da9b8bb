"""Signals from outside: per-user webhook credentials, saved alert-to-order mappings, received signals."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.extensions import db
from backend.models.base import TimestampMixin, UTCDateTime, utcnow

#: placed: an order was created (filled, open or risk-rejected: see ``order_status``);
#: failed: the order service refused it before creating an order; invalid: the body did not match.
SIGNAL_STATUSES = ("received", "placed", "failed", "invalid")


class SignalWebhook(TimestampMixin, db.Model):
    """One per user: the webhook token (only its SHA-256 is kept) and an optional HMAC secret."""

    __tablename__ = "signal_webhooks"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    # Fernet-encrypted: the plaintext is needed to verify signatures, so it cannot be a hash.
    hmac_secret_encrypted: Mapped[str | None] = mapped_column(Text)


class SignalMapping(TimestampMixin, db.Model):
    __tablename__ = "signal_mappings"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_signal_mappings_user_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("trading_accounts.id", ondelete="CASCADE"))
    symbol: Mapped[str] = mapped_column(String(64), nullable=False)
    side: Mapped[str] = mapped_column(String(4), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    product: Mapped[str] = mapped_column(String(2), nullable=False)
    order_type: Mapped[str] = mapped_column(String(8), nullable=False)


class Signal(db.Model):
    __tablename__ = "signals"
    # each alert id is processed once per user; invalid bodies are kept with a NULL alert id
    __table_args__ = (UniqueConstraint("user_id", "alert_id", name="uq_signals_user_alert"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    alert_id: Mapped[str | None] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    mapping_id: Mapped[int | None] = mapped_column(ForeignKey("signal_mappings.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    order_status: Mapped[str | None] = mapped_column(String(20))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
