"""Paper/live trading accounts, orders, trades (fills), the cash ledger, positions and global settings.

Money and prices are ``Numeric(20, 4)``. The account's ``cash`` column is a running total kept in the
same transaction as every ledger insert, so ``cash == sum(ledger_entries.amount)`` always holds (tests
check it); it exists so that pre-trade checks need no aggregate over the ledger.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from backend.extensions import db
from backend.models.base import SoftDeleteMixin, TimestampMixin, utcnow

MONEY = Numeric(20, 4)
WORKING_STATUSES = ("pending", "open", "trigger_pending", "partially_filled")
# Partial-index predicate: working orders are few while filled/cancelled ones pile up for ever, so the
# per-order "cash held by working orders" sum and the tick matcher's look-ups index only working rows.
WORKING_PREDICATE = text("status IN ('pending', 'open', 'trigger_pending', 'partially_filled')")
# Live orders whose broker call is in flight or ended without an answer: the resolver's work list.
UNRESOLVED_STATUSES = ("submitting", "unknown")
UNRESOLVED_PREDICATE = text("status IN ('submitting', 'unknown')")


class TradingAccount(TimestampMixin, SoftDeleteMixin, db.Model):
    __tablename__ = "trading_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    mode: Mapped[str] = mapped_column(String(8), nullable=False, default="paper")
    starting_cash: Mapped[Decimal] = mapped_column(MONEY, nullable=False)
    cash: Mapped[Decimal] = mapped_column(MONEY, nullable=False, default=Decimal(0))
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # user id while this is the user's default account, else NULL: a unique column (NULLs may repeat)
    # makes "one default per user" hold even when two first requests race to create it.
    default_for_user: Mapped[int | None] = mapped_column(Integer, unique=True, nullable=True)
    risk_overrides: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    breaker_state: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class Order(TimestampMixin, db.Model):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("account_id", "client_order_id", name="uq_orders_account_client_order_id"),
        Index("ix_orders_account_id_id", "account_id", "id"),
        Index(
            "ix_orders_working_account",
            "account_id",
            postgresql_where=WORKING_PREDICATE,
            sqlite_where=WORKING_PREDICATE,
        ),
        Index(
            "ix_orders_working_symbol",
            "symbol",
            postgresql_where=WORKING_PREDICATE,
            sqlite_where=WORKING_PREDICATE,
        ),
        Index(
            "ix_orders_unresolved",
            "updated_at",
            postgresql_where=UNRESOLVED_PREDICATE,
            sqlite_where=UNRESOLVED_PREDICATE,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("trading_accounts.id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    client_order_id: Mapped[str | None] = mapped_column(String(64))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    response_status: Mapped[int] = mapped_column(Integer, nullable=False, default=201)
    broker_order_id: Mapped[str | None] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(64), nullable=False)
    side: Mapped[str] = mapped_column(String(4), nullable=False)
    type: Mapped[str] = mapped_column(String(8), nullable=False)
    product: Mapped[str] = mapped_column(String(16), nullable=False)
    validity: Mapped[str] = mapped_column(String(4), nullable=False, default="DAY")
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    filled_quantity: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    price: Mapped[Decimal | None] = mapped_column(MONEY)
    trigger_price: Mapped[Decimal | None] = mapped_column(MONEY)
    average_price: Mapped[Decimal | None] = mapped_column(MONEY)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="pending")
    status_message: Mapped[str] = mapped_column(Text, nullable=False, default="")
    reject_reasons: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    # cash held back for the unfilled part of a working order (released on fill/cancel/expiry)
    reserved_cash: Mapped[Decimal] = mapped_column(MONEY, nullable=False, default=Decimal(0))
    estimated_charges: Mapped[Decimal] = mapped_column(MONEY, nullable=False, default=Decimal(0))
    # F&O margin the order blocks once fully filled (backend/domain/risk/margin.py); moves to the
    # position fill by fill
    margin: Mapped[Decimal] = mapped_column(MONEY, nullable=False, default=Decimal(0))
    tag: Mapped[str | None] = mapped_column(String(64))
    strategy_id: Mapped[str | None] = mapped_column(String(64))
    # an after-market order: recorded and holding its cash, worked only from the next session open
    amo: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=text("false"))
    # a slice of an order above the freeze quantity: the first slice's id (NULL on the first one)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"), index=True)
    # live: the broker's own status text and product code (kept when they map to ``other``)
    broker_status: Mapped[str | None] = mapped_column(String(64))
    broker_product: Mapped[str | None] = mapped_column(String(16))


def is_working() -> ColumnElement[bool]:
    """``Order.status IN (working statuses)`` rendered with literal values: a bound list would leave a
    prepared statement's generic plan unable to prove the partial indexes' predicate, and scan."""
    return Order.status.in_(bindparam("working_statuses", list(WORKING_STATUSES), literal_execute=True))


class Trade(db.Model):
    """One fill."""

    __tablename__ = "trades"
    __table_args__ = (Index("ix_trades_account_id_id", "account_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("trading_accounts.id", ondelete="CASCADE"), nullable=False
    )
    order_id: Mapped[int] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True
    )
    symbol: Mapped[str] = mapped_column(String(64), nullable=False)
    side: Mapped[str] = mapped_column(String(4), nullable=False)
    product: Mapped[str] = mapped_column(String(16), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    price: Mapped[Decimal] = mapped_column(MONEY, nullable=False)
    charges: Mapped[Decimal] = mapped_column(MONEY, nullable=False, default=Decimal(0))
    realised_pnl: Mapped[Decimal] = mapped_column(MONEY, nullable=False, default=Decimal(0))
    executed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    # live: the broker's trade id, so reconciling the day's trades twice adds nothing
    broker_trade_id: Mapped[str | None] = mapped_column(String(64))

    # write-side links: a fill may be added before its order row is flushed (one flush per order)
    order: Mapped[Order] = relationship(lazy="raise")


class LedgerEntry(db.Model):
    """Every cash movement: ``fill`` (trade value), ``charge``, ``deposit`` and ``reset``."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("trading_accounts.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    amount: Mapped[Decimal] = mapped_column(MONEY, nullable=False)  # signed: credit > 0, debit < 0
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    trade_id: Mapped[int | None] = mapped_column(ForeignKey("trades.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)

    order: Mapped[Order | None] = relationship(lazy="raise")
    trade: Mapped[Trade | None] = relationship(lazy="raise")


class Position(db.Model):
    """Net position per account, symbol and product (average cost); ``stops`` holds a ProtectedPosition
    dict. Intraday (I) and delivery (D) are separate positions, as at the broker: a fill moves the
    position of its order's product."""

    __tablename__ = "positions"
    __table_args__ = (
        UniqueConstraint("account_id", "symbol", "product", name="uq_positions_account_symbol_product"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("trading_accounts.id", ondelete="CASCADE"), nullable=False, index=True
    )
    symbol: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    product: Mapped[str] = mapped_column(String(16), nullable=False, default="D")
    quantity: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    cost_basis: Mapped[Decimal] = mapped_column(MONEY, nullable=False, default=Decimal(0))
    realised_pnl: Mapped[Decimal] = mapped_column(MONEY, nullable=False, default=Decimal(0))
    stops: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    # F&O margin blocked by the open quantity: added on entry, released pro rata on exit
    margin: Mapped[Decimal] = mapped_column(MONEY, nullable=False, default=Decimal(0))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow
    )


class TradingSettings(db.Model):
    """Single row (id=1) of platform-wide trading switches."""

    __tablename__ = "trading_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    global_kill: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    kill_reason: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    updated_by: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow
    )
