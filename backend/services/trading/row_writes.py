"""An order's rows written with Core statements instead of the ORM's unit of work.

A filled paper order writes the same rows every time: INSERT its order and trades (RETURNING every
column), UPDATE its position and account (RETURNING their ``onupdate`` columns), then the queued
ledger rows. Sorting, diffing and post-fetching those few objects in the unit of work costs CPU on
top of the statements; written directly they cost 0.15-0.25 ms less per order (issue 13, measured in
``docs/benchmarks.md``). :func:`flush_order` writes them directly when they are all the session has
to write, and otherwise falls back to ``Session.flush()``, so a caller never depends on which path
ran.

Afterwards each object is exactly what a flush leaves: persistent, clean, holding the values the
database stored (inserts read them back; updates write values :func:`settle_numerics` rounded to
the column scale). Only public SQLAlchemy APIs are used: the written objects are expunged and made
detached with the stored values as their committed state (``make_transient_to_detached``), then
added back, which attaches a detached object without SQL.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Column, bindparam, insert, inspect, update
from sqlalchemy.orm import Session, make_transient, make_transient_to_detached
from sqlalchemy.orm.exc import StaleDataError

from backend.models.trading import Order, Position, Trade, TradingAccount
from backend.services.trading.common import settle_numerics
from backend.services.trading.paper_broker import write_queued_ledger

# what the fast path may update; anything else dirty (a cancelled stop order, a user row) falls back
_UPDATABLE = (Position, TradingAccount)


@functools.cache
def _columns(cls: type) -> tuple[tuple[str, Column], ...]:
    """(attribute key, column) of a mapped class; the mapping never changes."""
    return tuple((prop.key, prop.columns[0]) for prop in inspect(cls).column_attrs)


@functools.cache
def _insert(cls: type, given: frozenset[str]) -> tuple[Any, tuple[tuple[str, Column], ...]]:
    """INSERT of ``cls`` RETURNING the columns the caller did not give (ids, defaults), built once per
    set of given columns: a reused construct skips building and cache-key generation."""
    table = inspect(cls).local_table
    back = tuple((key, col) for key, col in _columns(cls) if col.key not in given)
    return insert(table).returning(*(col for _, col in back)), back


@functools.cache
def _update(cls: type, keys: frozenset[str]) -> tuple[Any, tuple[tuple[str, Column], ...]]:
    """UPDATE of ``keys`` by primary key, RETURNING the ``onupdate`` columns it also sets."""
    table = inspect(cls).local_table
    pk = inspect(cls).primary_key[0]
    back = tuple((key, col) for key, col in _columns(cls) if col.onupdate is not None and col.key not in keys)
    stmt = update(table).where(pk == bindparam("_pk")).values({k: bindparam(k) for k in keys})
    if back:
        stmt = stmt.returning(*(col for _, col in back))
    return stmt, back


def _eligible(session: Session, order: Order) -> list[Trade] | None:
    """The order's new trades when the session holds nothing else to write (else None)."""
    bind = session.get_bind()
    if not (bind.dialect.insert_returning and bind.dialect.update_returning) or session.deleted:
        return None
    trades = []
    seen_order = False
    for obj in session.new:
        if obj is order:
            seen_order = True
        elif type(obj) is Trade and obj.__dict__.get("order") is order and "order_id" not in obj.__dict__:
            trades.append(obj)
        else:
            return None  # a new position, a ledger object, another order: the unit of work sorts it
    if not seen_order:
        return None
    if any(type(obj) not in _UPDATABLE for obj in session.dirty):
        return None
    return trades


def _attach(session: Session, obj: Any, values: dict[str, Any]) -> None:
    """Make ``obj`` persistent and clean in ``session``, its current attributes plus ``values`` being
    the stored state."""
    state = inspect(obj)
    if state.session is not None:
        session.expunge(obj)
    if state.key is not None:
        make_transient(obj)
    for key, value in values.items():
        setattr(obj, key, value)
    make_transient_to_detached(obj)
    session.add(obj)


def _insert_row(session: Session, obj: Any, extra: dict[str, Any] | None = None) -> None:
    cls = type(obj)
    state = obj.__dict__
    params = {col.key: state[key] for key, col in _columns(cls) if key in state}
    if extra:
        params.update(extra)
    stmt, back = _insert(cls, frozenset(params))
    stored = session.connection().execute(stmt, params).one()
    values = {key: stored[i] for i, (key, _) in enumerate(back)}
    if extra:
        values.update(extra)
    _attach(session, obj, values)


def _update_row(session: Session, obj: Any) -> None:
    cls = type(obj)
    settle_numerics(obj)
    attrs = inspect(obj).attrs
    changed = {}
    for key, col in _columns(cls):
        if not col.primary_key:
            added = attrs[key].history.added
            if added:
                changed[col.key] = added[0]
    values: dict[str, Any] = {}
    if changed:
        stmt, back = _update(cls, frozenset(changed))
        got = session.connection().execute(stmt, {**changed, "_pk": inspect(obj).identity[0]})
        if back:
            row = got.one()  # no row: raises, as the unit of work does for a vanished row
            values = {key: row[i] for i, (key, _) in enumerate(back)}
        elif got.rowcount != 1:
            raise StaleDataError(f"UPDATE of {cls.__tablename__} matched {got.rowcount} rows, expected 1")
    _attach(session, obj, values)


def flush_order(session: Session, order: Order) -> None:
    """Write ``order``, its new trades and the positions and account they moved, then the queued
    ledger rows; ``session.flush()`` when anything else is pending. The order's trades must link to
    it through ``Trade.order`` (as ``apply_fill`` adds them)."""
    settle_numerics(order)  # the order is kept loaded past the commit (``commit_keeping``)
    trades = _eligible(session, order)
    if trades is None:
        session.flush()
        return
    dirty = list(session.dirty)
    _insert_row(session, order)
    for trade in trades:
        settle_numerics(trade)
        _insert_row(session, trade, {"order_id": order.id})
    for obj in dirty:
        _update_row(session, obj)
    write_queued_ledger(session)
