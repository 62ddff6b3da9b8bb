"""Broker connections, encrypted broker tokens (database backend of the token store), OAuth states.

No column here ever holds a plaintext token: ``broker_tokens.ciphertext`` is a Fernet token over the
whole entry (token and metadata), and OAuth states are stored as SHA-256 digests.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend.extensions import db
from backend.models.base import TimestampMixin, UTCDateTime


class BrokerConnection(TimestampMixin, db.Model):
    """A user's link to a broker account; the token itself lives in the token store."""

    __tablename__ = "broker_connections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("trading_accounts.id", ondelete="SET NULL"), nullable=True, index=True
    )
    broker: Mapped[str] = mapped_column(String(16), nullable=False, default="upstox")
    broker_user_id: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    broker_user_name: Mapped[str] = mapped_column(String(128), nullable=False, default="")
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active")  # active|revoked
    token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_reconciled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # the one connection an admin designated for the shared market-data feed (its owner's token)
    market_data_feed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default="0")


class BrokerToken(TimestampMixin, db.Model):
    """Database backend of the token store: one encrypted entry per (broker, user, account)."""

    __tablename__ = "broker_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_key: Mapped[str] = mapped_column(String(128), nullable=False, unique=True)
    ciphertext: Mapped[str] = mapped_column(Text, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)


class BrokerOAuthState(db.Model):
    """A pending authorization: the random state (hashed) bound to the user, usable once."""

    __tablename__ = "broker_oauth_states"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    broker: Mapped[str] = mapped_column(String(16), nullable=False, default="upstox")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
