"""Watchlists: a user's named, ordered lists of trading symbols (the dashboard's left column)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.extensions import db
from backend.models.base import TimestampMixin, UTCDateTime, utcnow


class Watchlist(TimestampMixin, db.Model):
    __tablename__ = "watchlists"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_watchlists_user_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(60), nullable=False)
    # display order among the user's lists (0 first); rewritten whole by a reorder
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    items: Mapped[list[WatchlistItem]] = relationship(
        back_populates="watchlist",
        order_by="WatchlistItem.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class WatchlistItem(db.Model):
    __tablename__ = "watchlist_items"
    __table_args__ = (UniqueConstraint("watchlist_id", "symbol", name="uq_watchlist_items_list_symbol"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    watchlist_id: Mapped[int] = mapped_column(
        ForeignKey("watchlists.id", ondelete="CASCADE"), nullable=False, index=True
    )
    symbol: Mapped[str] = mapped_column(String(64), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    watchlist: Mapped[Watchlist] = relationship(back_populates="items")
