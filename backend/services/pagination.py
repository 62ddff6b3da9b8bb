"""Keyset pagination shared by every list endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select

from backend.domain.errors import ValidationFailed
from backend.extensions import db


@dataclass
class Page:
    items: list[Any]
    next_cursor: dict | None


def keyset_page(stmt: Select, id_col: Any, limit: int, cursor: dict | None, descending: bool = True) -> Page:
    """Page ``stmt`` by ``id_col``; the cursor is ``{"id": last_seen_id}``."""
    if cursor:
        last = cursor.get("id")
        if not isinstance(last, int) or isinstance(last, bool):
            # A hand-made cursor must be a 422, not a type error in the database.
            raise ValidationFailed("cursor is malformed.", {"fields": {"cursor": ["Malformed cursor."]}})
        stmt = stmt.where(id_col < last if descending else id_col > last)
    stmt = stmt.order_by(id_col.desc() if descending else id_col.asc()).limit(limit + 1)
    rows = list(db.session.scalars(stmt).all())
    has_more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, {"id": rows[-1].id} if has_more and rows else None)
