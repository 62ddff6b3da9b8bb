"""Alert rules (with their persisted evaluation state), firing history, webhook attempts and secrets."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend.extensions import db
from backend.models.base import SoftDeleteMixin, TimestampMixin, utcnow

#: active: evaluated; paused: kept but skipped; done: a one-shot that fired; expired: past expires_at.
ALERT_STATUSES = ("active", "paused", "done", "expired")


class AlertRuleRow(TimestampMixin, SoftDeleteMixin, db.Model):
    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str | None] = mapped_column(String(100))
    symbol: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    params: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    recurring: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    cooldown_seconds: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active", index=True)
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    # RuleState.to_dict(): written by the evaluator so a restart never refires a crossing.
    state: Mapped[dict | None] = mapped_column(JSON)
    fire_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_fired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AlertHistory(db.Model):
    __tablename__ = "alert_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("alert_rules.id", ondelete="SET NULL"), index=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    symbol: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    price: Mapped[Decimal | None] = mapped_column(Numeric(20, 4))
    message: Mapped[str] = mapped_column(Text, nullable=False)
    payload: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    is_test: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    fired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    # pending / delivered / failed / refused; None when the rule has no webhook
    webhook_status: Mapped[str | None] = mapped_column(String(16))


class AlertWebhookAttempt(db.Model):
    __tablename__ = "alert_webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    history_id: Mapped[int] = mapped_column(
        ForeignKey("alert_history.id", ondelete="CASCADE"), nullable=False, index=True
    )
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    ok: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    duration_ms: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class AlertWebhookSecret(TimestampMixin, db.Model):
    """Per-user signing secret, Fernet-encrypted (it must be recoverable to sign each delivery)."""

    __tablename__ = "alert_webhook_secrets"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    secret_encrypted: Mapped[str] = mapped_column(Text, nullable=False)


class AlertEngineState(db.Model):
    """Evaluator checkpoint shared by all rules: per-symbol series (last price, windows)."""

    __tablename__ = "alert_engine_state"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    data: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow
    )
