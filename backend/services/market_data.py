"""Market data use cases: instruments, cached batch quotes/LTP, the candle store, option chains,
market status and indicators.

The active provider (simulated, csv or upstox, from ``MARKET_DATA_PROVIDER``) is built once per
app on first use. Reads of candles come from the ``candles`` table first; only the spans not yet
recorded in ``candle_coverage`` are fetched from the provider, upserted and recorded, so a second
read of the same range makes no provider call.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from flask import Flask, current_app
from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from backend.domain import indicators as ind
from backend.domain.errors import NotFound, ValidationFailed
from backend.domain.market.calendar import IST, MarketStatus, NseCalendar
from backend.domain.market.instruments import Instrument as DomainInstrument
from backend.domain.market.instruments import InstrumentRegistry
from backend.domain.market.provider import (
    INTERVALS,
    MAX_RANGE,
    MarketDataProvider,
    build_provider,
    interval_delta,
    unique,
)
from backend.domain.market.types import Candle, Quote, Tick
from backend.domain.options.analytics import ChainAnalytics, analyse_chain
from backend.domain.options.chain import ChainRow, OptionChain, OptionLeg
from backend.extensions import db
from backend.models.market import Candle as CandleRow
from backend.models.market import CandleCoverage
from backend.models.market import Instrument as InstrumentRow
from backend.services import market_calendar
from backend.services.cache import get_cache
from backend.services.pagination import Page, keyset_page

log = logging.getLogger(__name__)

INSTRUMENT_TYPES = ("EQ", "INDEX", "FUT", "CE", "PE")
# Chunk sizes for `flask market-data sync`: each chunk is committed on its own, so an
# interrupted sync keeps every completed chunk.
SYNC_CHUNK: dict[str, timedelta] = {
    "1m": timedelta(days=5),
    "5m": timedelta(days=10),
    "15m": timedelta(days=31),
    "1h": timedelta(days=92),
    "1d": timedelta(days=365),
}


# --------------------------------------------------------------------------- per-app state


@dataclass
class _State:
    provider: MarketDataProvider | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    by_symbol: dict[str, DomainInstrument] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    loaded_at: float = 0.0


def _state(app: Flask | None = None) -> _State:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    st = app.extensions.get("market_data")
    if st is None:
        st = app.extensions.setdefault("market_data", _State())
    return st


def init_app(app: Flask) -> None:
    """Create the per-app state (the provider itself is built lazily on first use)."""
    _state(app)


def set_provider(provider: MarketDataProvider | None, app: Flask | None = None) -> None:
    """Replace the active provider (tests, or an admin switching providers). None: rebuild lazily."""
    _state(app).provider = provider


# --------------------------------------------------------------------------- instruments


def to_domain(row: InstrumentRow) -> DomainInstrument:
    return DomainInstrument(
        instrument_key=row.instrument_key,
        trading_symbol=row.trading_symbol,
        name=row.name,
        exchange=row.exchange,
        segment=row.segment,
        instrument_type=row.instrument_type,
        lot_size=row.lot_size,
        tick_size=Decimal(row.tick_size).normalize() if row.tick_size is not None else Decimal("0.05"),
        freeze_quantity=row.freeze_quantity,
        expiry=row.expiry,
        strike=Decimal(row.strike).normalize() if row.strike is not None else None,
        underlying=row.underlying,
        sector=row.sector,
        base_price=Decimal(row.base_price) if row.base_price is not None else None,
    )


def instrument_values(ins: DomainInstrument) -> dict[str, Any]:
    """Column values of an ``instruments`` row for a domain instrument."""
    return {
        "instrument_key": ins.instrument_key,
        "trading_symbol": ins.trading_symbol,
        "name": ins.name,
        "name_search": ins.name.upper(),
        "exchange": ins.exchange,
        "segment": ins.segment,
        "instrument_type": ins.instrument_type,
        "lot_size": ins.lot_size,
        "tick_size": ins.tick_size,
        "freeze_quantity": ins.freeze_quantity,
        "expiry": ins.expiry,
        "strike": ins.strike,
        "underlying": ins.underlying,
        "sector": ins.sector,
        "base_price": ins.base_price,
        "is_active": True,
    }


def _reload_instruments(st: _State) -> None:
    rows = db.session.execute(select(InstrumentRow).where(InstrumentRow.is_active.is_(True))).scalars().all()
    st.by_symbol = {r.trading_symbol.upper(): to_domain(r) for r in rows}
    st.ids = {r.trading_symbol.upper(): r.id for r in rows}
    st.loaded_at = time.monotonic()


def _directory() -> _State:
    st = _state()
    ttl = current_app.config.get("CACHE_TTL_INSTRUMENTS", 3600.0)
    if not st.by_symbol or time.monotonic() - st.loaded_at > ttl:
        with st.lock:
            if not st.by_symbol or time.monotonic() - st.loaded_at > ttl:
                _reload_instruments(st)
    return st


def invalidate_instruments() -> None:
    """Force a reload from the table on next use (after `flask instruments load`)."""
    _state().loaded_at = 0.0


def find_instrument(symbol: str) -> DomainInstrument | None:
    sym = symbol.strip().upper()
    st = _directory()
    ins = st.by_symbol.get(sym)
    if ins is None:
        # Loaded by another process since our snapshot? One indexed look-up, then refresh.
        row_id = db.session.scalar(select(InstrumentRow.id).where(InstrumentRow.trading_symbol == sym))
        if row_id is not None:
            with st.lock:
                _reload_instruments(st)
            ins = st.by_symbol.get(sym)
    return ins


def get_instrument(symbol: str) -> DomainInstrument:
    ins = find_instrument(symbol)
    if ins is None:
        raise NotFound(
            f"Unknown symbol: {symbol}.", {"symbol": symbol, "symbols": [symbol]}, code="UNKNOWN_SYMBOL"
        )
    return ins


def instrument_id(symbol: str) -> int:
    ins = get_instrument(symbol)
    return _directory().ids[ins.trading_symbol.upper()]


def resolve(symbols: Iterable[str]) -> list[DomainInstrument]:
    """Instruments for ``symbols`` (order kept, duplicates dropped); NotFound names every unknown."""
    wanted = unique(s.strip().upper() for s in symbols if s and s.strip())
    found, unknown = [], []
    for s in wanted:
        ins = find_instrument(s)
        (found.append(ins) if ins is not None else unknown.append(s))
    if unknown:
        raise NotFound(
            f"Unknown symbol(s): {', '.join(unknown)}.", {"symbols": unknown}, code="UNKNOWN_SYMBOL"
        )
    return found


def known_symbols(symbols: Iterable[str]) -> tuple[list[str], list[str]]:
    """(known trading symbols, unknown inputs) without raising."""
    known, unknown = [], []
    for s in unique(symbols):
        ins = find_instrument(s) if isinstance(s, str) and s.strip() else None
        (known.append(ins.trading_symbol) if ins else unknown.append(s))
    return known, unknown


def search_instruments(q: str | None, itype: str | None, limit: int, cursor: dict | None) -> Page:
    """Prefix search on trading symbol or name (both indexed), keyset-paged by id."""
    stmt = select(InstrumentRow).where(InstrumentRow.is_active.is_(True))
    if q:
        prefix = q.strip().upper().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(
            or_(
                InstrumentRow.trading_symbol.like(prefix, escape="\\"),
                InstrumentRow.name_search.like(prefix, escape="\\"),
            )
        )
    if itype:
        stmt = stmt.where(InstrumentRow.instrument_type == itype)
    return keyset_page(stmt, InstrumentRow.id, limit, cursor, descending=False)


def upsert_instruments(instruments: Iterable[DomainInstrument], commit: bool = True) -> tuple[int, int]:
    """Insert new instruments and update existing ones (matched by instrument key).

    Returns (added, updated). Instruments are never deleted: candles reference them."""
    items = list({i.instrument_key: i for i in instruments}.values())
    if not items:
        return 0, 0
    existing: dict[str, InstrumentRow] = {}
    keys = [i.instrument_key for i in items]
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        for row in db.session.scalars(select(InstrumentRow).where(InstrumentRow.instrument_key.in_(chunk))):
            existing[row.instrument_key] = row
    taken = set(db.session.scalars(select(InstrumentRow.trading_symbol)).all())
    added = updated = 0
    for ins in items:
        values = instrument_values(ins)
        row = existing.get(ins.instrument_key)
        if row is None:
            if ins.trading_symbol in taken:
                log.warning("skipping instrument with a duplicate trading symbol %s", ins.trading_symbol)
                continue
            db.session.add(InstrumentRow(**values))
            taken.add(ins.trading_symbol)
            added += 1
        else:
            changed = False
            for k, v in values.items():
                if k == "base_price" and v is None:
                    continue  # a file without prices must not erase the simulator's reference
                if getattr(row, k) != v:
                    setattr(row, k, v)
                    changed = True
            updated += changed
    if commit:
        db.session.commit()
    invalidate_instruments()
    return added, updated


# --------------------------------------------------------------------------- provider


def _build_provider(app: Flask) -> MarketDataProvider:
    cfg = app.config
    name = cfg.get("MARKET_DATA_PROVIDER", "simulated")
    st = _state(app)
    registry = InstrumentRegistry(st.by_symbol.values())
    if name == "simulated":
        provider = build_provider(
            "simulated",
            seed=cfg.get("SIM_SEED", "42"),
            instruments=registry,
            holidays=sorted(market_calendar.calendar(app).holidays),
            # MARKET_CLOCK=always_open: the simulated market moves between sessions too
            off_session_moves=cfg.get("MARKET_CLOCK") == market_calendar.ALWAYS_OPEN,
            drift=cfg.get("SIM_DRIFT", 0.08),
            vol=cfg.get("SIM_VOL", 0.25),
            index_vol=cfg.get("SIM_INDEX_VOL", 0.15),
            rate=cfg.get("SIM_RATE", 0.065),
            carry_rate=cfg.get("SIM_CARRY_RATE", 0.0525),
            atm_vol=cfg.get("SIM_IV_ATM"),
            skew=cfg.get("SIM_IV_SKEW", -0.8),
            curvature=cfg.get("SIM_IV_CURVATURE", 4.0),
        )
        before = {i.instrument_key for i in registry}
        provider.list_index_options(cfg.get("SIM_STRIKES_EACH_SIDE", 20))  # type: ignore[attr-defined]
        provider.list_index_futures()  # type: ignore[attr-defined]
        fresh = [i for i in registry if i.instrument_key not in before]
        if fresh:
            # Series and futures listed since the seed ran (new expiries): make them searchable/subscribable.
            upsert_instruments(fresh)
            _reload_instruments(st)
        return provider
    if name == "csv":
        return build_provider("csv", folder=cfg.get("CSV_DATA_DIR"))
    if name == "upstox":
        # the token comes from the token store (the caller's own connection, or the one an admin
        # designated for the shared feed); UPSTOX_ACCESS_TOKEN is only an explicit operator override.
        # Calls go through the broker's circuit breaker and retries.
        from backend.services import broker as broker_service

        return build_provider(
            "upstox",
            token_provider=broker_service.market_data_token_provider(app),
            call_wrapper=broker_service.market_data_call_wrapper(app),
            instruments=registry,
            base_url=cfg.get("UPSTOX_BASE_URL"),
            timeout=(3.05, cfg.get("UPSTOX_TIMEOUT_SECONDS", 10.0)),
        )
    return build_provider(name)


def provider() -> MarketDataProvider:
    st = _directory()
    if st.provider is None:
        with st.lock:
            if st.provider is None:
                st.provider = _build_provider(current_app._get_current_object())  # type: ignore[attr-defined]
    return st.provider


def _call(fn_name: str, *args: Any) -> Any:
    """Call the provider. In-process providers keep unsynchronised caches: serialise them."""
    p = provider()
    if p.name in ("simulated", "csv"):
        with _state().lock:
            return getattr(p, fn_name)(*args)
    return getattr(p, fn_name)(*args)


# --------------------------------------------------------------------------- quotes / LTP


def _quote_ttl() -> float:
    return float(current_app.config.get("CACHE_TTL_QUOTES", 1.0))


def quotes(symbols: Iterable[str]) -> list[Quote]:
    """Quotes in request order; one provider call for all cache misses."""
    ins = resolve(symbols)
    syms = [i.trading_symbol for i in ins]
    cache = get_cache()
    hits = cache.get_many([f"quote:{s}" for s in syms])
    out: dict[str, Quote] = {s: Quote(**hits[f"quote:{s}"]) for s in syms if f"quote:{s}" in hits}
    missing = [s for s in syms if s not in out]
    if missing:
        fetched = _call("quotes", missing)
        out.update({k.upper(): v for k, v in fetched.items()})
        cache.set_many(
            {f"quote:{k.upper()}": dataclasses.asdict(v) for k, v in fetched.items()}, _quote_ttl()
        )
    return [out[s] for s in syms if s in out]


def ltp(symbols: Iterable[str]) -> dict[str, Decimal]:
    ins = resolve(symbols)
    syms = [i.trading_symbol for i in ins]
    cache = get_cache()
    hits = cache.get_many([f"ltp:{s}" for s in syms])
    out = {s: hits[f"ltp:{s}"] for s in syms if f"ltp:{s}" in hits}
    missing = [s for s in syms if s not in out]
    if missing:
        fetched = {k.upper(): v for k, v in _call("ltp", missing).items()}
        out.update(fetched)
        cache.set_many({f"ltp:{k}": v for k, v in fetched.items()}, _quote_ttl())
    return {s: out[s] for s in syms if s in out}


def record_ticks(ticks: Iterable[Tick], ttl: float | None = None) -> None:
    """Feed hook: keep the LTP cache current from live ticks (one round trip)."""
    items = {f"ltp:{t.symbol.upper()}": t.ltp for t in ticks}
    get_cache().set_many(items, ttl if ttl is not None else max(_quote_ttl(), 3.0))


def live_ticks(symbols: list[str], now: datetime) -> list[Tick]:
    """The provider's next ticks for the feed."""
    return _call("tick", symbols, now)


# --------------------------------------------------------------------------- candles


def _aware(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def check_range(interval: str, start: datetime, end: datetime) -> None:
    """Interval and range checks with the offending query field named (422)."""
    if interval not in INTERVALS:
        raise ValidationFailed(
            f"interval must be one of {', '.join(INTERVALS)}.",
            {"fields": {"interval": [f"Must be one of: {', '.join(INTERVALS)}."]}},
        )
    if end < start:
        raise ValidationFailed(
            "'to' must not be before 'from'.", {"fields": {"to": ["Must not be before 'from'."]}}
        )
    limit = MAX_RANGE[interval]
    if end - start > limit:
        raise ValidationFailed(
            f"Range too long for interval {interval}: at most {limit.days} days.",
            {"fields": {"from": [f"At most {limit.days} days before 'to' for interval {interval}."]}},
        )


def _row_to_candle(r: CandleRow) -> Candle:
    return Candle(
        ts=_aware(r.ts),
        open=Decimal(r.open),
        high=Decimal(r.high),
        low=Decimal(r.low),
        close=Decimal(r.close),
        volume=int(r.volume),
        oi=int(r.oi or 0),
    )


def _stored(iid: int, interval: str, start: datetime, end: datetime) -> list[Candle]:
    rows = db.session.scalars(
        select(CandleRow)
        .where(CandleRow.instrument_id == iid, CandleRow.interval == interval)
        .where(CandleRow.ts >= start, CandleRow.ts <= end)
        .order_by(CandleRow.ts)
    ).all()
    return [_row_to_candle(r) for r in rows]


def _coverage(iid: int, interval: str, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    rows = db.session.execute(
        select(CandleCoverage.start, CandleCoverage.end)
        .where(CandleCoverage.instrument_id == iid, CandleCoverage.interval == interval)
        .where(CandleCoverage.start <= end, CandleCoverage.end >= start)
        .order_by(CandleCoverage.start)
    ).all()
    return [(_aware(a), _aware(b)) for a, b in rows]


def gaps(
    covered: list[tuple[datetime, datetime]], start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """Closed sub-ranges of [start, end] not inside any covered span (spans sorted by start)."""
    out: list[tuple[datetime, datetime]] = []
    cursor, cursor_covered = start, False
    for a, b in covered:
        if b < cursor:
            continue
        if a > cursor:
            out.append((cursor, min(a, end)))
        if b >= cursor:
            cursor, cursor_covered = max(cursor, b), True
        if cursor >= end:
            break
    if cursor < end or not cursor_covered:
        out.append((cursor, end))
    return [(a, b) for a, b in out if a <= b]


def _insert_candles(iid: int, interval: str, bars: list[Candle]) -> int:
    """Insert bars not already stored; existing rows are never touched. Returns rows added."""
    if not bars:
        return 0
    lo, hi = min(b.ts for b in bars), max(b.ts for b in bars)
    have = {
        _aware(ts)
        for ts in db.session.scalars(
            select(CandleRow.ts).where(
                CandleRow.instrument_id == iid,
                CandleRow.interval == interval,
                CandleRow.ts >= lo,
                CandleRow.ts <= hi,
            )
        )
    }
    values = [
        {
            "instrument_id": iid,
            "interval": interval,
            "ts": b.ts.astimezone(UTC),
            "open": b.open,
            "high": b.high,
            "low": b.low,
            "close": b.close,
            "volume": int(b.volume),
            "oi": int(b.oi),
        }
        for b in {b.ts: b for b in bars}.values()
        if b.ts.astimezone(UTC) not in have
    ]
    if not values:
        return 0
    dialect = db.session.get_bind().dialect.name
    ins = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for i in range(0, len(values), 1000):
        stmt = ins(CandleRow).on_conflict_do_nothing(index_elements=["instrument_id", "interval", "ts"])
        db.session.execute(stmt, values[i : i + 1000])
    return len(values)


def _record_coverage(iid: int, interval: str, start: datetime, end: datetime) -> None:
    """Add [start, end] to the series' coverage, merging overlapping spans into one row."""
    rows = db.session.scalars(
        select(CandleCoverage)
        .where(CandleCoverage.instrument_id == iid, CandleCoverage.interval == interval)
        .where(CandleCoverage.start <= end, CandleCoverage.end >= start)
    ).all()
    lo = min([start, *(_aware(r.start) for r in rows)])
    hi = max([end, *(_aware(r.end) for r in rows)])
    if rows:
        db.session.execute(delete(CandleCoverage).where(CandleCoverage.id.in_([r.id for r in rows])))
    db.session.add(CandleCoverage(instrument_id=iid, interval=interval, start=lo, end=hi))


def _fill(iid: int, symbol: str, interval: str, start: datetime, end: datetime, now: datetime) -> int:
    """Fetch the uncovered parts of [start, end] and store them (caller commits)."""
    # Only completed bars are served; the span after the last possibly-complete bar stays a gap.
    horizon = min(end, now - interval_delta(interval))
    added = 0
    for a, b in gaps(_coverage(iid, interval, start, end), start, end):
        bars = _call("candles", symbol, interval, a, b)
        added += _insert_candles(iid, interval, bars)
        if a <= min(b, horizon):
            _record_coverage(iid, interval, a, min(b, horizon))
    return added


def _candle_ttl(interval: str) -> float:
    return float(current_app.config.get("CACHE_TTL_CANDLES", {}).get(interval, 60.0))


def candles(symbol: str, interval: str, start: datetime, end: datetime) -> list[Candle]:
    """Bars of [start, end]: cache, then the store, then the provider for missing spans."""
    start, end = _aware(start), _aware(end)
    check_range(interval, start, end)
    ins = get_instrument(symbol)
    sym = ins.trading_symbol
    key = f"candles:{sym}:{interval}:{int(start.timestamp())}:{int(end.timestamp())}"
    cache = get_cache()
    hit = cache.get(key)
    if hit is not None:
        return [Candle(**c) for c in hit]
    iid = instrument_id(sym)
    try:
        _fill(iid, sym, interval, start, end, datetime.now(UTC))
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    bars = _stored(iid, interval, start, end)
    cache.set(key, [dataclasses.asdict(c) for c in bars], _candle_ttl(interval))
    return bars


@dataclass
class SyncReport:
    symbol: str
    interval: str
    chunks: int = 0
    skipped: int = 0
    added: int = 0
    error: str | None = None
    stored_until: datetime | None = None


def sync_candles(
    symbol: str, interval: str, start: datetime, end: datetime, chunk: timedelta | None = None
) -> SyncReport:
    """Fetch [start, end] in chunks, each committed on its own; already covered chunks are skipped.

    A failure stops the sync and is reported; every chunk committed before it stays stored."""
    start, end = _aware(start), _aware(end)
    if interval not in INTERVALS:
        check_range(interval, start, start)
    if end < start:
        check_range(interval, start, end)
    ins = get_instrument(symbol)
    iid = instrument_id(ins.trading_symbol)
    step = min(chunk or SYNC_CHUNK[interval], MAX_RANGE[interval])
    report = SyncReport(ins.trading_symbol, interval)
    a = start
    while a <= end:
        b = min(a + step, end)
        try:
            if not gaps(_coverage(iid, interval, a, b), a, b):
                report.skipped += 1
            else:
                report.added += _fill(iid, ins.trading_symbol, interval, a, b, datetime.now(UTC))
                db.session.commit()
                report.chunks += 1
            report.stored_until = b
        except Exception as exc:  # noqa: BLE001 - reported to the caller with what was kept
            db.session.rollback()
            report.error = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
            log.warning("candle sync stopped", extra={"symbol": symbol, "at": a.isoformat()}, exc_info=True)
            break
        if b >= end:
            break
        a = b
    return report


def stored_count(symbol: str, interval: str) -> int:
    iid = instrument_id(symbol)
    return int(
        db.session.scalar(
            select(func.count(CandleRow.id)).where(
                CandleRow.instrument_id == iid, CandleRow.interval == interval
            )
        )
        or 0
    )


def last_bar_before(symbol: str, interval: str, before: datetime) -> datetime | None:
    """Open time of the latest bar strictly before ``before`` (store first, then one look-back)."""
    before = _aware(before)
    iid = instrument_id(symbol)
    found = db.session.scalar(
        select(func.max(CandleRow.ts)).where(
            CandleRow.instrument_id == iid, CandleRow.interval == interval, CandleRow.ts < before
        )
    )
    if found is None:
        lookback = min(MAX_RANGE[interval], timedelta(days=30 if interval != "1d" else 366))
        bars = candles(symbol, interval, before - lookback, before - timedelta(seconds=1))
        found = bars[-1].ts if bars else None
    return _aware(found) if found is not None else None


# --------------------------------------------------------------------------- options


def expiries(underlying: str) -> list[date]:
    ins = get_instrument(underlying)
    return list(_call("expiries", ins.trading_symbol))


def _chain_to_dict(chain: OptionChain) -> dict:
    return dataclasses.asdict(chain)


def _chain_from_dict(d: dict) -> OptionChain:
    rows = tuple(
        ChainRow(
            strike=r["strike"],
            call=OptionLeg(**r["call"]) if r.get("call") else None,
            put=OptionLeg(**r["put"]) if r.get("put") else None,
        )
        for r in d["rows"]
    )
    return OptionChain(
        underlying=d["underlying"], expiry=d["expiry"], spot=d["spot"], rows=rows, lot_size=d["lot_size"]
    )


def option_chain(underlying: str, expiry: date | None = None) -> OptionChain:
    ins = get_instrument(underlying)
    if ins.instrument_type not in ("INDEX", "EQ"):
        raise ValidationFailed(
            f"{ins.trading_symbol} is not an underlying.", {"fields": {"underlying": ["Not an underlying."]}}
        )
    listed = expiries(ins.trading_symbol)
    if expiry is None:
        if not listed:
            raise NotFound(
                f"No option expiries listed for {ins.trading_symbol}.", {"symbol": ins.trading_symbol}
            )
        expiry = listed[0]
    elif expiry not in listed:
        raise NotFound(
            f"No {ins.trading_symbol} options listed for expiry {expiry}.",
            {
                "symbol": ins.trading_symbol,
                "expiry": expiry.isoformat(),
                "expiries": [e.isoformat() for e in listed],
            },
        )
    key = f"chain:{ins.trading_symbol}:{expiry.isoformat()}"
    cache = get_cache()
    hit = cache.get(key)
    if hit is not None:
        return _chain_from_dict(hit)
    chain = _call("option_chain", ins.trading_symbol, expiry)
    cache.set(key, _chain_to_dict(chain), float(current_app.config.get("CACHE_TTL_OPTION_CHAIN", 5.0)))
    return chain


def chain_analytics(underlying: str, expiry: date | None = None) -> tuple[OptionChain, ChainAnalytics]:
    chain = option_chain(underlying, expiry)
    return chain, analyse_chain(chain.rows, chain.spot)


# --------------------------------------------------------------------------- calendar


def calendar() -> NseCalendar:
    """The exchange calendar (data: ``backend.services.market_calendar``)."""
    return market_calendar.calendar()


def market_status(now: datetime | None = None, segment: str | None = None) -> MarketStatus:
    return calendar().market_status(now or market_calendar.now(), segment)


# --------------------------------------------------------------------------- indicators

INDICATORS = ("sma", "ema", "rsi", "macd", "bollinger", "vwap", "atr")


def _clean(arr: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in arr]


def indicator(
    symbol: str, name: str, interval: str, start: datetime, end: datetime, params: dict[str, Any]
) -> dict[str, Any]:
    """Indicator series over the stored candles; ``values`` maps output name -> list (None in warm-up)."""
    bars = candles(symbol, interval, start, end)
    close = np.array([float(b.close) for b in bars], dtype=np.float64)
    high = np.array([float(b.high) for b in bars], dtype=np.float64)
    low = np.array([float(b.low) for b in bars], dtype=np.float64)
    volume = np.array([float(b.volume) for b in bars], dtype=np.float64)
    period = params.get("period")
    used: dict[str, Any] = {}
    try:
        if name in ("sma", "ema", "rsi", "atr"):
            used["period"] = period or (14 if name in ("rsi", "atr") else 20)
            if name == "atr":
                out = {"atr": ind.atr(high, low, close, used["period"])}
            else:
                out = {name: getattr(ind, name)(close, used["period"])}
        elif name == "macd":
            used.update(
                fast=params.get("fast") or 12, slow=params.get("slow") or 26, signal=params.get("signal") or 9
            )
            line, sig, hist = ind.macd(close, used["fast"], used["slow"], used["signal"])
            out = {"macd": line, "signal": sig, "hist": hist}
        elif name == "bollinger":
            used.update(period=period or 20, k=params.get("k") or 2.0)
            mid, upper, lower = ind.bollinger(close, used["period"], used["k"])
            out = {"mid": mid, "upper": upper, "lower": lower}
        elif name == "vwap":
            sessions = [b.ts.astimezone(IST).date().isoformat() for b in bars]
            out = {"vwap": ind.vwap(high, low, close, volume, session=sessions if interval != "1d" else None)}
        else:
            raise ValidationFailed(
                f"Unknown indicator {name!r}.",
                {"fields": {"name": [f"Must be one of: {', '.join(INDICATORS)}."]}},
            )
    except ValueError as exc:
        raise ValidationFailed(str(exc), {"fields": {"params": [str(exc)]}}) from exc
    return {
        "symbol": get_instrument(symbol).trading_symbol,
        "name": name,
        "interval": interval,
        "params": used,
        "ts": [b.ts for b in bars],
        "values": {k: _clean(v) for k, v in out.items()},
    }
