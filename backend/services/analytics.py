"""Portfolio analytics: what-if simulation, performance from daily snapshots, risk, P&L and trade
statistics. Every ratio comes from ``backend.domain.metrics`` — the functions the backtester uses —
so a backtest and an account report the same numbers for the same curve (docs/analytics.md).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import click
import numpy as np
from flask.cli import with_appcontext
from sqlalchemy import select

from backend.domain import metrics as m
from backend.domain.errors import ValidationFailed
from backend.domain.market.calendar import IST
from backend.extensions import db
from backend.models.strategies import EquitySnapshot
from backend.models.trading import Order, Position, Trade, TradingAccount
from backend.models.user import User
from backend.services import market_data

log = logging.getLogger(__name__)
BENCHMARK = "NIFTY"  # the NIFTY 50 index in the instrument master
CENT = Decimal("0.01")


def _clean(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def curve_metrics(equity: np.ndarray, periods_per_year: float = 252.0) -> dict[str, float | None]:
    """The backtester's curve metrics (same functions) for an equity series."""
    if equity.size < 2:
        return {
            k: None
            for k in ("total_return", "cagr", "annual_volatility", "sharpe", "sortino", "max_drawdown")
        }
    rets = m.returns_from_equity(equity)
    mdd, dur = m.max_drawdown(equity)
    return {
        "total_return": _clean(m.total_return(equity)),
        "cagr": _clean(m.cagr(equity, periods_per_year)),
        "annual_volatility": _clean(m.annual_volatility(rets, periods_per_year)),
        "sharpe": _clean(m.sharpe_ratio(rets, periods_per_year)),
        "sortino": _clean(m.sortino_ratio(rets, periods_per_year)),
        "max_drawdown": _clean(mdd),
        "max_drawdown_duration": float(dur),
        "var_95_historical": _clean(m.historical_var(rets, 0.95)),
        "var_95_parametric": _clean(m.parametric_var(rets, 0.95)),
    }


def _daily_closes(symbol: str, start: date, end: date) -> dict[date, float]:
    bars = market_data.candles(
        symbol, "1d", datetime.combine(start, time(0), UTC), datetime.combine(end, time(23, 59), UTC)
    )
    return {b.ts.astimezone(IST).date(): float(b.close) for b in bars}


# --------------------------------------------------------------------------- simulate


def simulate(data: dict[str, Any]) -> dict[str, Any]:
    symbols = [s.upper() for s in data["symbols"]]
    weights = data.get("weights") or [1.0 / len(symbols)] * len(symbols)
    if len(weights) != len(symbols):
        raise ValidationFailed("one weight per symbol", {"fields": {"weights": ["one weight per symbol"]}})
    w = np.array(weights, dtype=np.float64)
    if np.any(w < 0) or w.sum() <= 0:
        raise ValidationFailed("weights must be >= 0 and not all 0", {"fields": {"weights": ["invalid"]}})
    w = w / w.sum()
    end = data.get("end") or datetime.now(IST).date()
    market_data.resolve(symbols)
    series = [_daily_closes(s, data["start"], end) for s in symbols]
    days = sorted(set.intersection(*(set(s) for s in series)))
    if len(days) < 2:
        raise ValidationFailed(
            "fewer than 2 common trading days in the range", {"fields": {"start": ["too late"]}}
        )
    px = np.array([[s[d] for s in series] for d in days])  # days x symbols
    amount = float(data["amount"])
    units = amount * w / px[0]
    equity = np.empty(len(days))
    for i, d in enumerate(days):
        if data.get("rebalance") == "monthly" and i > 0 and d.month != days[i - 1].month:
            value = float(units @ px[i])
            units = value * w / px[i]  # rebalance at the month's first close
        equity[i] = float(units @ px[i])
    return {
        "currency": "INR",
        "symbols": symbols,
        "weights": [float(x) for x in w],
        "rebalance": data.get("rebalance", "never"),
        "dates": [d.isoformat() for d in days],
        "equity": [round(float(x), 2) for x in equity],
        "final_value": Decimal(repr(float(equity[-1]))).quantize(CENT),
        "metrics": curve_metrics(equity),
    }


# --------------------------------------------------------------------------- accounts


def _account(user: User, account_id: int | None) -> TradingAccount:
    from backend.services.trading.accounts import resolve_account

    return resolve_account(user, account_id)


def take_snapshot(user: User, account_id: int | None, day: date | None = None) -> EquitySnapshot:
    """Store today's (or ``day``'s) equity = cash + marked positions; re-taking a day overwrites it."""
    from backend.services.trading import portfolio

    acct = _account(user, account_id)
    summary = portfolio.summary(user, acct.id)
    day = day or datetime.now(IST).date()
    row = db.session.scalar(
        select(EquitySnapshot).where(EquitySnapshot.account_id == acct.id, EquitySnapshot.day == day)
    )
    if row is None:
        row = EquitySnapshot(user_id=user.id, account_id=acct.id, day=day)
        db.session.add(row)
    row.equity = Decimal(summary["equity"])
    row.cash = Decimal(summary["cash"])
    row.positions_value = Decimal(summary["positions_value"])
    db.session.commit()
    return row


def snapshot_all(day: date | None = None) -> int:
    n = 0
    for acct in list(db.session.scalars(select(TradingAccount).where(TradingAccount.deleted_at.is_(None)))):
        user = db.session.get(User, acct.user_id)
        try:
            take_snapshot(user, acct.id, day)
            n += 1
        except Exception:  # noqa: BLE001 - one bad account must not stop the others
            db.session.rollback()
            log.exception("equity snapshot failed for account %s", acct.id)
    return n


def performance(user: User, account_id: int | None, start: date | None, end: date | None) -> dict[str, Any]:
    acct = _account(user, account_id)
    stmt = select(EquitySnapshot).where(EquitySnapshot.account_id == acct.id)
    if start:
        stmt = stmt.where(EquitySnapshot.day >= start)
    if end:
        stmt = stmt.where(EquitySnapshot.day <= end)
    rows = list(db.session.scalars(stmt.order_by(EquitySnapshot.day)))
    equity = np.array([float(r.equity) for r in rows])
    fills = _fills(acct.id, start, end)
    return {
        "account_id": acct.id,
        "currency": "INR",
        "dates": [r.day.isoformat() for r in rows],
        "equity": [str(r.equity) for r in rows],
        "metrics": curve_metrics(equity),
        "fills": len(fills),
        "charges": sum((Decimal(t.charges) for t, _ in fills), Decimal("0")),
        "realised_pnl": sum((Decimal(t.realised_pnl) for t, _ in fills), Decimal("0")),
    }


def _fills(account_id: int, start: date | None, end: date | None) -> list[tuple[Trade, str | None]]:
    stmt = (
        select(Trade, Order.strategy_id)
        .join(Order, Order.id == Trade.order_id)
        .where(Trade.account_id == account_id)
        .order_by(Trade.id)
    )
    if start:
        stmt = stmt.where(Trade.executed_at >= datetime.combine(start, time(0), IST))
    if end:
        stmt = stmt.where(Trade.executed_at < datetime.combine(end + timedelta(days=1), time(0), IST))
    return [(t, sid) for t, sid in db.session.execute(stmt).all()]


def pnl(user: User, account_id: int | None, group_by: str, start: date | None, end: date | None) -> dict:
    """Realised P&L net of charges per day, symbol or strategy (``strategy_id`` tag, '-' = manual)."""
    acct = _account(user, account_id)
    groups: dict[str, dict[str, Decimal | int]] = defaultdict(
        lambda: {"realised_pnl": Decimal(0), "charges": Decimal(0), "fills": 0}
    )
    key_of = {
        "day": lambda t, sid: _aware(t.executed_at).astimezone(IST).date().isoformat(),
        "symbol": lambda t, sid: t.symbol,
        "strategy": lambda t, sid: sid or "-",
    }[group_by]
    for t, sid in _fills(acct.id, start, end):
        g = groups[key_of(t, sid)]
        g["realised_pnl"] += Decimal(t.realised_pnl)
        g["charges"] += Decimal(t.charges)
        g["fills"] += 1
    items = [
        {"key": k, "realised_pnl": v["realised_pnl"], "charges": v["charges"],
         "net_pnl": v["realised_pnl"] - v["charges"], "fills": v["fills"]}
        for k, v in sorted(groups.items())
    ]  # fmt: skip
    return {"account_id": acct.id, "group_by": group_by, "items": items}


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def trade_stats(user: User, account_id: int | None, start: date | None, end: date | None) -> dict:
    """Statistics over closing fills (those that realised P&L), net of the closing fill's charges."""
    acct = _account(user, account_id)
    closing = [t for t, _ in _fills(acct.id, start, end) if Decimal(t.realised_pnl) != 0]
    values = np.array([float(Decimal(t.realised_pnl) - Decimal(t.charges)) for t in closing])
    return {
        "account_id": acct.id,
        "closed_trades": int(values.size),
        "win_rate": _clean(m.win_rate(values)) if values.size else None,
        "profit_factor": _clean(m.profit_factor(values)) if values.size else None,
        "expectancy": _clean(m.expectancy(values)) if values.size else None,
        "best": _clean(float(values.max())) if values.size else None,
        "worst": _clean(float(values.min())) if values.size else None,
        "sqn": _clean(m.sqn(values)) if values.size else None,
    }


def risk(user: User, account_id: int | None, lookback_days: int = 250, level: float = 0.95) -> dict:
    """VaR (historical, parametric) of today's holdings over past daily returns, exposure, beta."""
    acct = _account(user, account_id)
    rows = list(
        db.session.scalars(select(Position).where(Position.account_id == acct.id, Position.quantity != 0))
    )
    prices = market_data.ltp([p.symbol for p in rows]) if rows else {}
    values = {p.symbol: Decimal(p.quantity) * prices.get(p.symbol, Decimal(0)) for p in rows}
    gross = sum((abs(v) for v in values.values()), Decimal(0))
    by_sector: dict[str, Decimal] = defaultdict(Decimal)
    for sym, v in values.items():
        ins = market_data.find_instrument(sym)
        by_sector[(ins.sector if ins and getattr(ins, "sector", None) else "Unknown")] += v
    weights = {s: (float(abs(v) / gross) if gross else 0.0) for s, v in values.items()}
    out: dict[str, Any] = {
        "account_id": acct.id,
        "currency": "INR",
        "gross_exposure": gross,
        "net_exposure": sum(values.values(), Decimal(0)),
        "by_symbol": [{"key": s, "value": v, "weight": weights[s]} for s, v in sorted(values.items())],
        "by_sector": [
            {"key": k, "value": v, "weight": float(abs(v) / gross) if gross else 0.0}
            for k, v in sorted(by_sector.items())
        ],  # fmt: skip
        "concentration_hhi": sum(w * w for w in weights.values()),
        "largest_weight": max(weights.values(), default=0.0),
        "var_level": level,
        "var_historical": None,
        "var_parametric": None,
        "beta": None,
    }
    if not values:
        return out
    end = datetime.now(IST).date()
    start = end - timedelta(days=int(lookback_days * 1.5))
    closes = {s: _daily_closes(s, start, end) for s in values}
    bench = _daily_closes(BENCHMARK, start, end)
    days = sorted(set(bench).intersection(*(set(c) for c in closes.values())))
    if len(days) < 3:
        return out
    pv = np.array([sum(float(values[s]) / closes[s][days[-1]] * closes[s][d] for s in values) for d in days])
    port = m.returns_from_equity(pv)
    bret = m.returns_from_equity(np.array([bench[d] for d in days]))
    out["var_historical"] = Decimal(repr(m.historical_var(port, level) * float(gross))).quantize(CENT)
    out["var_parametric"] = Decimal(repr(m.parametric_var(port, level) * float(gross))).quantize(CENT)
    var_b = float(np.var(bret, ddof=1))
    out["beta"] = _clean(float(np.cov(port, bret, ddof=1)[0, 1] / var_b)) if var_b > 0 else None
    return out


# --------------------------------------------------------------------------- scheduling


@click.group("analytics")
def analytics_cli() -> None:
    """Portfolio analytics."""


@analytics_cli.command("snapshot")
@with_appcontext
def snapshot_cmd() -> None:
    """Take today's equity snapshot of every account now."""
    click.echo(f"snapshots taken: {snapshot_all()}")
