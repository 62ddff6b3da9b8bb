"""Portfolio indices: define, compute incrementally, read values and allocations, simulate an
investment (pure logic in backend.domain.portfolio; prices from the candle store).

Every function takes the acting user and only sees that user's indices (another user's index is
``NotFound``). Computing appends: the days after ``computed_until`` are added, no stored value or
allocation row is ever updated or deleted, and the holdings to continue from are kept in ``state``
as exact floats, so computing twice equals computing once over the longer range.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from backend.domain.charges import ChargeSchedule, load_trading_config
from backend.domain.errors import Conflict, NotFound, ValidationFailed
from backend.domain.market.calendar import IST
from backend.domain.market.fx import HOME, FxProvider, build_fx_provider
from backend.domain.market.provider import MAX_RANGE
from backend.domain.portfolio import Holdings, IndexRun, IndexSpec, align_rates, run_index
from backend.domain.portfolio.simulation import simulate_investment
from backend.extensions import db
from backend.models import User
from backend.models.indices import IndexAllocation, IndexValue, PortfolioIndex
from backend.services import market_data
from backend.services.pagination import Page, keyset_page

MAX_INDICES_PER_USER = 50
MAX_SYMBOLS = 100
PAISA = Decimal("0.01")
LEVEL = Decimal("0.0001")


def _field_error(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, {"fields": {field: [message]}})


def _today() -> date:
    return datetime.now(IST).date()


def _schedule() -> ChargeSchedule:
    cache = current_app.extensions.setdefault("index_charges", {})
    path = current_app.config.get("TRADING_CONFIG")
    if path not in cache:
        cache[path] = load_trading_config(path).charges if path else ChargeSchedule.default()
    return cache[path]


def fx_provider() -> FxProvider:
    """The app's FX provider (``FX_PROVIDER``), built once."""
    ext = current_app.extensions
    if "fx_provider" not in ext:
        name = current_app.config.get("FX_PROVIDER", "simulated")
        settings: dict[str, Any] = {"seed": current_app.config.get("SIM_SEED", "42")}
        if name == "csv":
            settings = {
                "folder": current_app.config.get("FX_CSV_DIR") or current_app.config.get("CSV_DATA_DIR")
            }
        ext["fx_provider"] = build_fx_provider(name, **settings)
    return ext["fx_provider"]


# --------------------------------------------------------------------------- definitions


def _spec(row: PortfolioIndex) -> IndexSpec:
    params = row.weighting_params or {}
    shares = {
        sym: [(date.fromisoformat(d), float(n)) for d, n in series]
        for sym, series in (params.get("shares_outstanding") or {}).items()
    }
    return IndexSpec(
        symbols=tuple(row.symbols),
        weighting=row.weighting,
        rebalance=row.rebalance,
        lookback=row.lookback,
        drift_threshold=float(row.drift_threshold) if row.drift_threshold is not None else None,
        drift_mode=row.drift_mode,
        custom_weights={k: float(v) for k, v in (params.get("weights") or {}).items()} or None,
        shares_outstanding=shares or None,
    )


def _owned(user: User, index_id: int) -> PortfolioIndex:
    row = db.session.get(PortfolioIndex, index_id)
    if row is None or row.user_id != user.id:
        raise NotFound(f"Index {index_id} not found.", code="INDEX_NOT_FOUND")
    return row


def _check_currency(code: str) -> None:
    if code == HOME:
        return
    probe = date(2024, 1, 2)
    fx_provider().rates(code, HOME, probe - timedelta(days=7), probe)  # NotFound naming it if unknown


def create(user: User, data: dict[str, Any]) -> PortfolioIndex:
    symbols = [s.strip().upper() for s in data["symbols"]]
    if len(symbols) > MAX_SYMBOLS:
        raise _field_error("symbols", f"An index holds at most {MAX_SYMBOLS} instruments.")
    _known, unknown = market_data.known_symbols(symbols)
    if unknown:
        raise NotFound(
            f"Unknown symbol(s): {', '.join(unknown)}.",
            {"fields": {"symbols": [f"Unknown symbol: {s}" for s in unknown]}},
            code="UNKNOWN_SYMBOL",
        )
    # the charge model and the whole-share simulation are those of cash equities
    not_eq = [s for s in symbols if market_data.get_instrument(s).instrument_type != "EQ"]
    if not_eq:
        raise _field_error("symbols", f"Only equities can be index constituents: {', '.join(not_eq)}.")
    weights = {k.strip().upper(): v for k, v in (data.get("weights") or {}).items()}
    shares = {
        k.strip().upper(): sorted((e["effective_from"], e["shares"]) for e in v)
        for k, v in (data.get("shares_outstanding") or {}).items()
    }
    spec = IndexSpec(
        symbols=tuple(symbols),
        weighting=data["weighting"],
        rebalance=data["rebalance"],
        lookback=data["lookback"],
        drift_threshold=float(data["drift_threshold"]) if data.get("drift_threshold") is not None else None,
        drift_mode=data["drift_mode"],
        custom_weights={k: float(v) for k, v in weights.items()} if data["weighting"] == "custom" else None,
    )
    spec.validate()  # 422 naming the field before anything is stored
    if data["weighting"] == "market_cap":
        missing = [s for s in symbols if not shares.get(s)]
        if missing:
            raise _field_error(
                "shares_outstanding",
                f"market-cap weighting needs a shares-outstanding series for {', '.join(missing)}",
            )
    currency = data["currency"].upper()
    _check_currency(currency)
    if data["start_date"] > _today():
        raise _field_error("start_date", "Must not be in the future.")
    count = db.session.scalar(select(func.count(PortfolioIndex.id)).where(PortfolioIndex.user_id == user.id))
    if count >= MAX_INDICES_PER_USER:
        raise _field_error("name", f"You can have at most {MAX_INDICES_PER_USER} indices.")
    taken = db.session.scalar(
        select(PortfolioIndex.id).where(
            PortfolioIndex.user_id == user.id, PortfolioIndex.name == data["name"]
        )
    )
    if taken is not None:
        raise Conflict(
            f"You already have an index named {data['name']!r}.",
            {"fields": {"name": ["Already used by another of your indices."]}},
            code="INDEX_NAME_TAKEN",
        )
    params: dict[str, Any] = {}
    if data["weighting"] == "custom":
        params["weights"] = {k: str(v) for k, v in weights.items()}
    if shares:
        params["shares_outstanding"] = {k: [[d.isoformat(), str(n)] for d, n in v] for k, v in shares.items()}
    row = PortfolioIndex(
        user_id=user.id,
        name=data["name"],
        symbols=symbols,
        weighting=data["weighting"],
        weighting_params=params,
        lookback=data["lookback"],
        rebalance=data["rebalance"],
        drift_threshold=data.get("drift_threshold"),
        drift_mode=data["drift_mode"],
        base_value=data["base_value"],
        currency=currency,
        start_date=data["start_date"],
        capital=data["capital"],
        apply_charges=data["apply_charges"],
    )
    db.session.add(row)
    db.session.commit()
    return row


def list_for(user: User, limit: int, cursor: dict | None) -> Page:
    return keyset_page(
        select(PortfolioIndex).where(PortfolioIndex.user_id == user.id), PortfolioIndex.id, limit, cursor
    )


def get(user: User, index_id: int) -> PortfolioIndex:
    return _owned(user, index_id)


def delete(user: User, index_id: int) -> None:
    row = _owned(user, index_id)
    db.session.delete(row)  # its values and allocations go with it (ON DELETE CASCADE)
    db.session.commit()


# --------------------------------------------------------------------------- prices


def _closes(symbols: list[str], start: date, end: date) -> tuple[list[date], np.ndarray]:
    """Daily closes on the days every symbol traded (IST trading dates), in ``symbols`` order."""
    per_symbol: list[dict[date, float]] = []
    span = MAX_RANGE["1d"] - timedelta(days=1)
    for sym in symbols:
        closes: dict[date, float] = {}
        a = start
        while a <= end:
            b = min(a + span, end)
            bars = market_data.candles(
                sym, "1d", datetime.combine(a, time(0), UTC), datetime.combine(b, time(23, 59), UTC)
            )
            closes.update({bar.ts.astimezone(IST).date(): float(bar.close) for bar in bars})
            a = b + timedelta(days=1)
        per_symbol.append(closes)
    days = sorted(set.intersection(*(set(c) for c in per_symbol))) if per_symbol else []
    matrix = np.array([[c[d] for c in per_symbol] for d in days]).reshape(len(days), len(symbols))
    return days, matrix


def _warmup_start(first: date, lookback: int) -> date:
    # calendar days holding ``lookback`` sessions: 5 of 7 days trade, plus room for holidays
    return first - timedelta(days=math.ceil(lookback * 7 / 5) + 20)


def _fx(currency: str, days: list[date], start: int) -> np.ndarray:
    """INR per unit of ``currency`` on each day from ``days[start]`` (carried over FX holidays).
    The warm-up days before ``start`` only feed the covariance window: they get 1 and need no rate."""
    out = np.ones(len(days))
    if currency == HOME:
        return out
    live = days[start:]
    rates = fx_provider().rates(currency, HOME, live[0] - timedelta(days=10), live[-1])
    out[start:] = align_rates(live, rates)
    return out


# --------------------------------------------------------------------------- compute


def _dec(x: float, q: Decimal) -> Decimal:
    return Decimal(repr(float(x))).quantize(q, rounding=ROUND_HALF_UP)


def _holdings(state: dict[str, Any]) -> Holdings:
    return Holdings(
        day=date.fromisoformat(state["day"]),
        units=np.array(state["units"], dtype=np.float64),
        cash=float(state["cash"]),
        target=np.array(state["target"], dtype=np.float64),
    )


def compute(user: User, index_id: int, end: date | None = None) -> dict[str, Any]:
    """Add the index's values (and allocations of its rebalances) from the day after
    ``computed_until`` (or ``start_date``) to ``end`` (default today, IST)."""
    row = _owned(user, index_id)
    end = min(end or _today(), _today())
    spec = _spec(row)
    planned_from = row.computed_until
    state = _holdings(row.state) if row.state else None
    first = row.computed_until + timedelta(days=1) if row.computed_until else row.start_date
    summary = {"index": row, "added_values": 0, "added_rebalances": 0}
    if first > end:
        return summary
    load_from = _warmup_start(first, spec.lookback if spec.warmup else 1)
    if state is not None:
        load_from = min(load_from, state.day)
    # the candle store commits what it fetches: load before taking the row lock
    days, closes = _closes(list(spec.symbols), load_from, end)
    if db.session.get_bind().dialect.name == "postgresql":
        # one computation per index at a time; SQLite serialises writers, the unique keys guard it
        db.session.execute(select(PortfolioIndex.id).where(PortfolioIndex.id == row.id).with_for_update())
    db.session.refresh(row)
    if row.computed_until != planned_from:
        db.session.rollback()
        raise Conflict("the index was computed by another request meanwhile; try again", code="INDEX_BUSY")
    start = next((i for i, d in enumerate(days) if d >= first), len(days))
    if start == len(days):
        db.session.rollback()
        return summary  # no new trading day yet
    if state is not None and (start == 0 or days[start - 1] != state.day):
        raise Conflict(
            f"the prices no longer include {state.day.isoformat()}, the last computed day",
            code="INDEX_HISTORY_MISMATCH",
        )
    if state is None and start < spec.warmup:
        raise _field_error(
            "start_date",
            f"{spec.weighting} needs {spec.lookback} trading days of prices before the start date",
        )
    schedule = _schedule() if row.apply_charges else None
    capital = float(row.capital)
    run = run_index(spec, days, closes, start, capital, schedule=schedule, state=state)
    fx = _fx(row.currency, days, start)
    fx_start = float(row.state["fx_start"]) if row.state else float(fx[start])
    # value in the index currency relative to the capital there on the first day
    levels = float(row.base_value) * (run.equity / fx[start:]) / (capital / fx_start)
    _append(row, run, levels)
    final = run.final
    assert final is not None
    row.state = {
        "day": final.day.isoformat(),
        "units": [float(u) for u in final.units],
        "cash": float(final.cash),
        "target": [float(t) for t in final.target],
        "fx_start": fx_start,
        "equity": float(run.equity[-1]),
        "closes": [float(c) for c in closes[-1]],  # the last day's closes: today's drifted weights
    }
    row.computed_until = run.days[-1]
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(
            "the index is being computed by another request; try again", code="INDEX_BUSY"
        ) from None
    summary.update(added_values=len(run.days), added_rebalances=len(run.rebalances))
    return summary


def _append(row: PortfolioIndex, run: IndexRun, levels: np.ndarray) -> None:
    now = datetime.now(UTC)
    db.session.add_all(
        IndexValue(index_id=row.id, day=d, value=_dec(v, LEVEL), created_at=now)
        for d, v in zip(run.days, levels, strict=True)
    )
    for reb in run.rebalances:
        for k, sym in enumerate(row.symbols):
            db.session.add(
                IndexAllocation(
                    index_id=row.id,
                    day=reb.day,
                    symbol=sym,
                    target_weight=_dec(reb.target[k], Decimal("1e-10")),
                    units=_dec(reb.units_after[k], Decimal("1e-10")),
                    traded_units=_dec(reb.units_after[k] - reb.units_before[k], Decimal("1e-10")),
                    price=_dec(reb.prices[k], LEVEL),
                    charges=reb.charges[k],
                    created_at=now,
                )
            )


# --------------------------------------------------------------------------- reads


def values(
    user: User, index_id: int, start: date | None, end: date | None, limit: int, cursor: dict | None
) -> Page:
    row = _owned(user, index_id)
    stmt = select(IndexValue).where(IndexValue.index_id == row.id)
    if start is not None:
        stmt = stmt.where(IndexValue.day >= start)
    if end is not None:
        stmt = stmt.where(IndexValue.day <= end)
    # rows are appended in date order, so id order is date order
    return keyset_page(stmt, IndexValue.id, limit, cursor, descending=False)


def allocation(user: User, index_id: int, on: date | None = None) -> dict[str, Any]:
    """The allocation in force on ``on`` (default: the latest): its rebalance day's rows."""
    row = _owned(user, index_id)
    stmt = select(func.max(IndexAllocation.day)).where(IndexAllocation.index_id == row.id)
    if on is not None:
        stmt = stmt.where(IndexAllocation.day <= on)
    day = db.session.scalar(stmt)
    if day is None:
        raise NotFound(
            f"Index {index_id} has no allocation{' on ' + on.isoformat() if on else ''} yet: compute it.",
            code="INDEX_NOT_COMPUTED",
        )
    items = list(
        db.session.scalars(
            select(IndexAllocation)
            .where(IndexAllocation.index_id == row.id, IndexAllocation.day == day)
            .order_by(IndexAllocation.id)
        )
    )
    # Weights drift with prices after a rebalance: the latest allocation also carries each
    # holding's weight at the last computed close (units x close / portfolio value).
    state = row.state or {}
    latest = bool(state.get("closes")) and (on is None or on >= row.computed_until)
    current: dict[str, Decimal | None] = {i.symbol: None for i in items}
    if latest and state.get("equity"):
        for sym, units, close in zip(row.symbols, state["units"], state["closes"], strict=True):
            current[sym] = _dec(units * close / state["equity"], Decimal("1e-10"))
    return {
        "index_id": row.id,
        "rebalanced_on": day,
        "computed_until": row.computed_until,
        "total_charges": sum((i.charges for i in items), Decimal("0.00")),
        "items": [
            {
                "symbol": i.symbol,
                "target_weight": i.target_weight,
                "current_weight": current.get(i.symbol),
                "units": i.units,
                "traded_units": i.traded_units,
                "price": i.price,
                "charges": i.charges,
            }
            for i in items
        ],
    }


# --------------------------------------------------------------------------- simulate


def simulate(user: User, index_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """An amount invested on ``start`` in ``currency`` following the index's method, in whole
    shares with charges (docs/portfolios.md). Nothing is stored."""
    row = _owned(user, index_id)
    spec = _spec(row)
    start_day, end = data["start_date"], min(data.get("end_date") or _today(), _today())
    if end < start_day:
        raise _field_error("end_date", "Must not be before start_date.")
    currency = data["currency"].upper()
    days, closes = _closes(
        list(spec.symbols), _warmup_start(start_day, spec.lookback if spec.warmup else 1), end
    )
    start = next((i for i, d in enumerate(days) if d >= start_day), len(days))
    if start == len(days):
        raise _field_error("start_date", "No trading day between start_date and end_date.")
    if start < spec.warmup:
        raise _field_error(
            "start_date",
            f"{spec.weighting} needs {spec.lookback} trading days of prices before the start date",
        )
    fx = _fx(currency, days, start)
    res = simulate_investment(
        spec, days, closes, start, float(data["amount"]), fx, _schedule() if row.apply_charges else None
    )
    charges = sum((r.total_charges for r in res.run.rebalances), Decimal("0.00"))
    final = res.run.final
    assert final is not None
    return {
        "index_id": row.id,
        "currency": currency,
        "start_date": res.days[0],
        "end_date": res.days[-1],
        "invested": data["amount"],
        "final_value": _dec(res.final_value, PAISA),
        "total_return": round(res.total_return, 8),
        "charges": charges,
        "charges_currency": HOME,
        "rebalances": len(res.run.rebalances),
        "holdings": [
            {"symbol": s, "shares": int(round(u))} for s, u in zip(spec.symbols, final.units, strict=True)
        ],
        "cash": _dec(final.cash, PAISA),
        "values": [{"date": d, "value": _dec(v, PAISA)} for d, v in zip(res.days, res.value, strict=True)],
    }
