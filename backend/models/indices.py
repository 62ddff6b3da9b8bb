"""Portfolio indices: the definition, its value per day and its allocation per rebalance day.

History is append-only: a computation adds the days after ``computed_until`` and never updates
or deletes an ``index_values`` or ``index_allocations`` row (the unique keys guard it). What the
next computation continues from (units, cash, targets as exact floats) is kept in ``state``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.extensions import db
from backend.models.base import TimestampMixin, UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer, "sqlite")


class PortfolioIndex(TimestampMixin, db.Model):
    __tablename__ = "portfolio_indices"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_portfolio_indices_user_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(80), nullable=False)
    symbols: Mapped[list] = mapped_column(JSON, nullable=False)  # the universe, in order
    weighting: Mapped[str] = mapped_column(String(24), nullable=False)
    # custom weights {symbol: "0.5"}; shares outstanding {symbol: [["2024-01-01", "123"], ...]}
    weighting_params: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    lookback: Mapped[int] = mapped_column(Integer, nullable=False)
    rebalance: Mapped[str] = mapped_column(String(12), nullable=False)
    drift_threshold: Mapped[Decimal | None] = mapped_column(Numeric(12, 6))
    drift_mode: Mapped[str] = mapped_column(String(12), nullable=False, default="absolute")
    base_value: Mapped[Decimal] = mapped_column(Numeric(20, 4), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False, default="INR")
    start_date: Mapped[date] = mapped_column(Date, nullable=False)
    # notional portfolio (INR) the charges are computed on: rupee charges need a rupee size
    capital: Mapped[Decimal] = mapped_column(Numeric(20, 4), nullable=False)
    apply_charges: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    computed_until: Mapped[date | None] = mapped_column(Date)
    state: Mapped[dict | None] = mapped_column(JSON)


class IndexValue(db.Model):
    __tablename__ = "index_values"
    __table_args__ = (UniqueConstraint("index_id", "day", name="uq_index_values_index_day"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    index_id: Mapped[int] = mapped_column(
        ForeignKey("portfolio_indices.id", ondelete="CASCADE"), nullable=False, index=True
    )
    day: Mapped[date] = mapped_column(Date, nullable=False)
    value: Mapped[Decimal] = mapped_column(Numeric(20, 4), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class IndexAllocation(db.Model):
    """One instrument's holding after a rebalance (the first day's allocation included)."""

    __tablename__ = "index_allocations"
    __table_args__ = (
        UniqueConstraint("index_id", "day", "symbol", name="uq_index_allocations_index_day_symbol"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    index_id: Mapped[int] = mapped_column(
        ForeignKey("portfolio_indices.id", ondelete="CASCADE"), nullable=False, index=True
    )
    day: Mapped[date] = mapped_column(Date, nullable=False)
    symbol: Mapped[str] = mapped_column(String(64), nullable=False)
    target_weight: Mapped[Decimal] = mapped_column(Numeric(14, 10), nullable=False)
    units: Mapped[Decimal] = mapped_column(Numeric(30, 10), nullable=False)
    traded_units: Mapped[Decimal] = mapped_column(Numeric(30, 10), nullable=False)
    price: Mapped[Decimal] = mapped_column(Numeric(18, 4), nullable=False)
    charges: Mapped[Decimal] = mapped_column(Numeric(20, 4), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
