"""Watchlists: create, rename, reorder, delete; add, remove and reorder symbols.

Every function takes the acting user and only ever sees that user's lists (another user's list is
``NotFound``, never ``Forbidden``, so ids leak nothing). Symbols must be active instruments.
"""

from __future__ import annotations

from sqlalchemy import func, select

from backend.domain.errors import Conflict, NotFound, ValidationFailed
from backend.extensions import db
from backend.models import Instrument, User
from backend.models.watchlists import Watchlist, WatchlistItem

# A list feeds one Socket.IO subscription; SOCKETIO_MAX_SUBSCRIPTIONS defaults to 100.
MAX_SYMBOLS_PER_LIST = 100
MAX_LISTS_PER_USER = 20


def _field_error(field: str, message: str, code: str | None = None) -> ValidationFailed:
    return ValidationFailed(message, {"fields": {field: [message]}}, code=code)


def _owned(user: User, watchlist_id: int) -> Watchlist:
    wl = db.session.get(Watchlist, watchlist_id)
    if wl is None or wl.user_id != user.id:
        raise NotFound(f"Watchlist {watchlist_id} not found.", code="WATCHLIST_NOT_FOUND")
    return wl


def _normalise(symbols: list[str]) -> list[str]:
    out: list[str] = []
    for s in symbols:
        sym = s.strip().upper()
        if sym and sym not in out:
            out.append(sym)
    return out


def _check_symbols(symbols: list[str], field: str = "symbols") -> None:
    if not symbols:
        return
    known = set(
        db.session.scalars(
            select(Instrument.trading_symbol).where(
                Instrument.trading_symbol.in_(symbols), Instrument.is_active.is_(True)
            )
        )
    )
    unknown = [s for s in symbols if s not in known]
    if unknown:
        raise NotFound(
            f"Unknown symbol(s): {', '.join(unknown)}.",
            {"fields": {field: [f"Unknown symbol: {s}" for s in unknown]}, "symbols": unknown},
            code="UNKNOWN_SYMBOL",
        )
    if len(symbols) > MAX_SYMBOLS_PER_LIST:
        raise _field_error(field, f"A watchlist holds at most {MAX_SYMBOLS_PER_LIST} symbols.")


def _check_name_free(user: User, name: str, exclude_id: int | None = None) -> None:
    stmt = select(Watchlist.id).where(Watchlist.user_id == user.id, Watchlist.name == name)
    if exclude_id is not None:
        stmt = stmt.where(Watchlist.id != exclude_id)
    if db.session.scalar(stmt) is not None:
        raise Conflict(
            f"You already have a watchlist named {name!r}.",
            {"fields": {"name": ["Already used by another of your watchlists."]}},
            code="WATCHLIST_NAME_TAKEN",
        )


def list_for(user: User) -> list[Watchlist]:
    return list(
        db.session.scalars(
            select(Watchlist).where(Watchlist.user_id == user.id).order_by(Watchlist.position, Watchlist.id)
        )
    )


def get(user: User, watchlist_id: int) -> Watchlist:
    return _owned(user, watchlist_id)


def create(user: User, name: str, symbols: list[str] | None = None) -> Watchlist:
    name = name.strip()
    if not name:
        raise _field_error("name", "Name must not be blank.")
    count = db.session.scalar(select(func.count(Watchlist.id)).where(Watchlist.user_id == user.id)) or 0
    if count >= MAX_LISTS_PER_USER:
        raise _field_error("name", f"You can keep at most {MAX_LISTS_PER_USER} watchlists.")
    _check_name_free(user, name)
    syms = _normalise(symbols or [])
    _check_symbols(syms)
    last = db.session.scalar(select(func.max(Watchlist.position)).where(Watchlist.user_id == user.id))
    wl = Watchlist(user_id=user.id, name=name, position=(last + 1) if last is not None else 0)
    wl.items = [WatchlistItem(symbol=s, position=i) for i, s in enumerate(syms)]
    db.session.add(wl)
    db.session.commit()
    return wl


def rename(user: User, watchlist_id: int, name: str) -> Watchlist:
    wl = _owned(user, watchlist_id)
    name = name.strip()
    if not name:
        raise _field_error("name", "Name must not be blank.")
    _check_name_free(user, name, exclude_id=wl.id)
    wl.name = name
    db.session.commit()
    return wl


def delete(user: User, watchlist_id: int) -> None:
    wl = _owned(user, watchlist_id)
    db.session.delete(wl)
    db.session.commit()


def reorder_lists(user: User, ids: list[int]) -> list[Watchlist]:
    """``ids`` must name every one of the user's lists exactly once, in the new order."""
    lists = list_for(user)
    mine = {wl.id: wl for wl in lists}
    if len(ids) != len(set(ids)) or set(ids) != set(mine):
        raise _field_error("ids", "Give every one of your watchlist ids exactly once.")
    for pos, wid in enumerate(ids):
        mine[wid].position = pos
    db.session.commit()
    return [mine[wid] for wid in ids]


def add_symbol(user: User, watchlist_id: int, symbol: str, position: int | None = None) -> Watchlist:
    wl = _owned(user, watchlist_id)
    sym = _normalise([symbol])
    if not sym:
        raise _field_error("symbol", "Symbol must not be blank.")
    sym_s = sym[0]
    current = [it.symbol for it in wl.items]
    if sym_s in current:
        raise Conflict(
            f"{sym_s} is already in {wl.name!r}.",
            {"fields": {"symbol": ["Already in this watchlist."]}},
            code="WATCHLIST_SYMBOL_EXISTS",
        )
    _check_symbols([sym_s], "symbol")
    if len(current) >= MAX_SYMBOLS_PER_LIST:
        raise _field_error("symbol", f"A watchlist holds at most {MAX_SYMBOLS_PER_LIST} symbols.")
    at = len(current) if position is None else max(0, min(position, len(current)))
    current.insert(at, sym_s)
    _rewrite(wl, current)
    db.session.commit()
    return wl


def remove_symbol(user: User, watchlist_id: int, symbol: str) -> Watchlist:
    wl = _owned(user, watchlist_id)
    sym = symbol.strip().upper()
    current = [it.symbol for it in wl.items]
    if sym not in current:
        raise NotFound(f"{sym} is not in watchlist {wl.name!r}.")
    current.remove(sym)
    _rewrite(wl, current)
    db.session.commit()
    return wl


def set_symbols(user: User, watchlist_id: int, symbols: list[str]) -> Watchlist:
    """Replace the list's symbols (reorder, or bulk add/remove) in one call."""
    wl = _owned(user, watchlist_id)
    syms = _normalise(symbols)
    if len(syms) != len([s for s in symbols if s.strip()]):
        raise _field_error("symbols", "A symbol appears more than once.")
    _check_symbols(syms)
    _rewrite(wl, syms)
    db.session.commit()
    return wl


def _rewrite(wl: Watchlist, symbols: list[str]) -> None:
    """Keep rows (and their added_at) of symbols that stay; positions follow ``symbols``."""
    existing = {it.symbol: it for it in wl.items}
    keep = set(symbols)
    for sym, item in existing.items():
        if sym not in keep:
            wl.items.remove(item)
    db.session.flush()  # deletes first: the (list, symbol) unique constraint must not see a duplicate
    new_items = []
    for pos, sym in enumerate(symbols):
        item = existing.get(sym) or WatchlistItem(symbol=sym)
        item.position = pos
        new_items.append(item)
    wl.items = new_items
