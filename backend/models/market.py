"""Market data: instruments, the candle store and the record of ranges already fetched."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.extensions import db
from backend.models.base import utcnow

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit key for candles.
BigId = BigInteger().with_variant(Integer, "sqlite")
PRICE = Numeric(18, 4)


class Instrument(db.Model):
    __tablename__ = "instruments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instrument_key: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    trading_symbol: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    # Upper-cased name, so a case-insensitive prefix search can use a plain b-tree index.
    name_search: Mapped[str] = mapped_column(String(128), nullable=False)
    exchange: Mapped[str] = mapped_column(String(8), nullable=False, default="NSE")
    segment: Mapped[str] = mapped_column(String(16), nullable=False)
    instrument_type: Mapped[str] = mapped_column(String(8), nullable=False)
    lot_size: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    tick_size: Mapped[Decimal] = mapped_column(Numeric(12, 4), nullable=False)
    freeze_quantity: Mapped[int | None] = mapped_column(Integer)
    expiry: Mapped[date | None] = mapped_column(Date)
    strike: Mapped[Decimal | None] = mapped_column(Numeric(14, 4))
    underlying: Mapped[str | None] = mapped_column(String(64))
    sector: Mapped[str | None] = mapped_column(String(64))
    base_price: Mapped[Decimal | None] = mapped_column(PRICE)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)

    __table_args__ = (
        # text_pattern_ops lets PostgreSQL serve LIKE 'abc%' from the index whatever the collation.
        Index(
            "ix_instruments_symbol_prefix",
            "trading_symbol",
            postgresql_ops={"trading_symbol": "text_pattern_ops"},
        ),
        Index(
            "ix_instruments_name_prefix", "name_search", postgresql_ops={"name_search": "text_pattern_ops"}
        ),
        Index("ix_instruments_type_symbol", "instrument_type", "trading_symbol"),
        Index("ix_instruments_underlying_expiry", "underlying", "expiry"),
    )


class Candle(db.Model):
    __tablename__ = "candles"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    instrument_id: Mapped[int] = mapped_column(
        ForeignKey("instruments.id", ondelete="CASCADE"), nullable=False
    )
    interval: Mapped[str] = mapped_column(String(4), nullable=False)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    open: Mapped[Decimal] = mapped_column(PRICE, nullable=False)
    high: Mapped[Decimal] = mapped_column(PRICE, nullable=False)
    low: Mapped[Decimal] = mapped_column(PRICE, nullable=False)
    close: Mapped[Decimal] = mapped_column(PRICE, nullable=False)
    volume: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    oi: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)

    __table_args__ = (
        Index("uq_candles_instrument_interval_ts", "instrument_id", "interval", "ts", unique=True),
    )


class CandleCoverage(db.Model):
    """A [start, end] span of one series already fetched from the provider.

    Gaps are computed against these spans rather than against expected bar times, so holidays,
    halts and provider-specific sessions never trigger refetches.
    """

    __tablename__ = "candle_coverage"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instrument_id: Mapped[int] = mapped_column(
        ForeignKey("instruments.id", ondelete="CASCADE"), nullable=False
    )
    interval: Mapped[str] = mapped_column(String(4), nullable=False)
    start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    end: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_candle_coverage_series", "instrument_id", "interval", "start"),)


class MarketHoliday(db.Model):
    """An exchange holiday loaded with ``flask calendar load FILE`` (adds to the shipped calendar
    files in ``config/calendars``). ``segment`` "*" closes every segment of the exchange."""

    __tablename__ = "market_holidays"
    __table_args__ = (UniqueConstraint("exchange", "segment", "day", name="uq_market_holidays_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    exchange: Mapped[str] = mapped_column(String(8), nullable=False, default="NSE")
    segment: Mapped[str] = mapped_column(String(16), nullable=False, default="*")
    day: Mapped[date] = mapped_column(Date, nullable=False)
    name: Mapped[str] = mapped_column(String(128), nullable=False, default="")
    source: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    status: Mapped[str] = mapped_column(String(12), nullable=False, default="published")
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
