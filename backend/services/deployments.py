"""Live deployments: a saved signal strategy trading a paper account from feed bars.

Ticks from the tick bus are aggregated into bars of the strategy's interval per symbol. When a bar
closes, the strategy (the same class the backtester runs) computes ``signal_at_last_bar`` over the
warm-up history (candle store) plus the live bars; a change of target becomes a MARKET order of
the difference, placed through the paper-trading service (so the risk coordinator decides) and
tagged ``strategy_id=<saved strategy id>`` for P&L attribution. Targets are long-only on delivery
(``product D``): a -1 target means flat. The position per symbol and the last processed bar live
in ``strategy_deployments.runtime``, so a restart resumes where it stopped.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from flask import Flask, current_app
from sqlalchemy import select

from backend.domain.errors import Conflict, DomainError, NotFound, ValidationFailed
from backend.domain.market.provider import interval_delta
from backend.domain.market.types import Candle, Tick
from backend.domain.strategies import SignalStrategy, StrategyFactory
from backend.extensions import db
from backend.models.base import utcnow
from backend.models.strategies import Deployment, DeploymentLog, SavedStrategy
from backend.models.user import User
from backend.services import market_data
from backend.services.pagination import Page, keyset_page

log = logging.getLogger(__name__)
MAX_BARS = 2000


# --------------------------------------------------------------------------- bars from ticks


@dataclass
class BarAggregator:
    """OHLCV bars of ``step`` from ticks; :meth:`add` returns the bar that a new bucket closed."""

    step: timedelta
    current: dict[str, Any] | None = None

    def bucket(self, ts: datetime) -> datetime:
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        n = (ts - epoch) // self.step
        return epoch + n * self.step

    def add(self, tick: Tick) -> Candle | None:
        start = self.bucket(tick.ts)
        closed = None
        cur = self.current
        if cur is not None and start > cur["ts"]:
            closed = Candle(cur["ts"], cur["open"], cur["high"], cur["low"], cur["close"], cur["volume"])
            cur = None
        if cur is None:
            self.current = {
                "ts": start, "open": tick.ltp, "high": tick.ltp, "low": tick.ltp, "close": tick.ltp,
                "volume": tick.volume,
            }  # fmt: skip
        else:
            cur["high"] = max(cur["high"], tick.ltp)
            cur["low"] = min(cur["low"], tick.ltp)
            cur["close"] = tick.ltp
            cur["volume"] += tick.volume
        return closed


@dataclass
class _Live:
    deployment_id: int
    strategy: SignalStrategy
    symbols: list[str]
    step: timedelta
    aggregators: dict[str, BarAggregator] = field(default_factory=dict)
    history: dict[str, deque] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class DeploymentEngine:
    """Per-app registry of running deployments and their single tick-bus subscription."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.live: dict[int, _Live] = {}
        self.lock = threading.Lock()
        self.subscription = None

    def _ensure_subscribed(self) -> None:
        if self.subscription is not None:
            return
        from backend.realtime.bus import tick_bus

        self.subscription = tick_bus.subscribe(
            self.on_tick, symbols=self.symbols, name="strategy-deployments"
        )

    def symbols(self) -> set[str]:
        with self.lock:
            return {s for lv in self.live.values() for s in lv.symbols}

    def start(self, dep: Deployment, saved: SavedStrategy, warmup: bool = True) -> None:
        strategy = StrategyFactory.create(saved.strategy, saved.params)
        assert isinstance(strategy, SignalStrategy)
        step = interval_delta(saved.interval)
        lv = _Live(dep.id, strategy, list(saved.symbols), step)
        for sym in lv.symbols:
            lv.aggregators[sym] = BarAggregator(step)
            lv.history[sym] = deque(
                _warmup_bars(sym, saved.interval, strategy) if warmup else [], maxlen=MAX_BARS
            )
        with self.lock:
            self.live[dep.id] = lv
        self._ensure_subscribed()

    def stop(self, deployment_id: int) -> None:
        with self.lock:
            self.live.pop(deployment_id, None)

    def shutdown(self) -> None:
        """Process exit: detach from the tick bus. The deployments stay ``running`` in the database
        with their state, so the next start resumes them (:func:`resume_all`)."""
        from backend.realtime.bus import tick_bus

        with self.lock:
            sub, self.subscription = self.subscription, None
            self.live.clear()
        if sub is not None:
            tick_bus.unsubscribe(sub)

    def on_tick(self, tick: Tick) -> None:
        with self.lock:
            targets = [lv for lv in self.live.values() if tick.symbol in lv.aggregators]
        for lv in targets:
            with lv.lock:
                bar = lv.aggregators[tick.symbol].add(tick)
            if bar is not None:
                self.on_bar(lv.deployment_id, tick.symbol, bar)

    def on_bar(self, deployment_id: int, symbol: str, bar: Candle) -> None:
        with self.lock:
            lv = self.live.get(deployment_id)
        if lv is None:
            return
        with lv.lock:
            lv.history[symbol].append(bar)
            bars = list(lv.history[symbol])
        with self.app.app_context():
            try:
                process_bar(deployment_id, lv.strategy, symbol, bars)
            except Exception:  # noqa: BLE001 - one deployment's failure must not stop the feed
                db.session.rollback()
                log.exception("deployment %s failed on a bar", deployment_id)
                _fail(deployment_id, "internal error while processing a bar")
                self.stop(deployment_id)


def _warmup_bars(symbol: str, interval: str, strategy: SignalStrategy) -> list[Candle]:
    need = max(strategy.warmup() * 2, 50)
    end = datetime.now(UTC)
    span = min(interval_delta(interval) * need * 3, timedelta(days=60 if interval != "1d" else 3650))
    try:
        return market_data.candles(symbol, interval, end - span, end)[-MAX_BARS:]
    except DomainError:
        log.warning("no warm-up history for %s %s", symbol, interval)
        return []


def engine(app: Flask | None = None) -> DeploymentEngine:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    return app.extensions.setdefault("deployment_engine", DeploymentEngine(app))


# --------------------------------------------------------------------------- per-bar decision


def _log(dep_id: int, event: str, message: str, level: str = "info", **details: Any) -> None:
    db.session.add(
        DeploymentLog(deployment_id=dep_id, event=event, message=message, level=level, details=details)
    )


def _fail(dep_id: int, reason: str) -> None:
    dep = db.session.get(Deployment, dep_id)
    if dep is not None and dep.state == "running":
        dep.state, dep.error, dep.stopped_at = "failed", reason, utcnow()
        _log(dep_id, "failed", reason, "error")
        db.session.commit()


def process_bar(deployment_id: int, strategy: SignalStrategy, symbol: str, bars: list[Candle]) -> None:
    """Decide on a closed bar and place the order that moves the position to the new target."""
    from backend.services.strategies import gateway

    dep = db.session.get(Deployment, deployment_id)
    if dep is None or dep.state != "running":
        return
    saved = db.session.get(SavedStrategy, dep.strategy_id)
    runtime = dict(dep.runtime or {})
    last = runtime.get("last_bar", {}).get(symbol)
    bar_ts = bars[-1].ts.isoformat()
    if last is not None and bar_ts <= last:
        return  # already processed (a replay after restart)
    data = {
        "open": np.array([float(b.open) for b in bars]),
        "high": np.array([float(b.high) for b in bars]),
        "low": np.array([float(b.low) for b in bars]),
        "close": np.array([float(b.close) for b in bars]),
        "volume": np.array([float(b.volume) for b in bars]),
    }
    target = strategy.signal_at_last_bar(data)
    positions = dict(runtime.get("positions", {}))
    held = int(positions.get(symbol, 0))
    runtime.setdefault("last_bar", {})
    runtime["last_bar"] = {**runtime["last_bar"], symbol: bar_ts}
    runtime["bars"] = int(runtime.get("bars", 0)) + 1
    if not math.isnan(target):
        wanted = int(saved.quantity) if target > 0 else 0
        delta = wanted - held
        if delta:
            order = {
                "account_id": dep.account_id,
                "symbol": symbol,
                "side": "BUY" if delta > 0 else "SELL",
                "type": "MARKET",
                "product": "D",
                "quantity": abs(delta),
                "tag": f"deploy:{dep.id}",
                "strategy_id": str(saved.id),
            }
            user = db.session.get(User, dep.user_id)
            try:
                placed = gateway().place_order(user, order)
            except DomainError as exc:
                db.session.rollback()
                dep = db.session.get(Deployment, deployment_id)
                _log(dep.id, "order_rejected", exc.message, "warning", code=exc.code, order=order, bar=bar_ts)
                dep.runtime = runtime
                db.session.commit()
                return
            dep = db.session.get(Deployment, deployment_id)
            positions[symbol] = wanted
            runtime["orders"] = int(runtime.get("orders", 0)) + 1
            _log(
                dep.id,
                "order",
                f"{order['side']} {order['quantity']} {symbol} (target {target:+g})",
                order_id=getattr(placed, "id", None),
                bar=bar_ts,
                close=str(bars[-1].close),
            )
    runtime["positions"] = positions
    dep.runtime = runtime
    db.session.commit()


# --------------------------------------------------------------------------- use cases


def _saved(user: User, strategy_id: int) -> SavedStrategy:
    from backend.services.strategies import get_saved

    return get_saved(user, strategy_id)


def _current(strategy_id: int) -> Deployment | None:
    return db.session.scalar(
        select(Deployment)
        .where(Deployment.strategy_id == strategy_id)
        .order_by(Deployment.id.desc())
        .limit(1)
    )


def deploy(user: User, strategy_id: int, account_id: int | None = None) -> Deployment:
    saved = _saved(user, strategy_id)
    if StrategyFactory.get(saved.strategy).kind != "signal":
        raise ValidationFailed(
            "only signal strategies can be deployed", {"strategy": ["not a signal strategy"]}
        )
    if not saved.symbols:
        raise ValidationFailed("the strategy has no symbols to trade", {"symbols": ["at least one symbol"]})
    from backend.services.trading.accounts import resolve_account

    acct = resolve_account(user, account_id if account_id is not None else saved.account_id)
    current = _current(saved.id)
    if current is not None and current.state == "running":
        raise Conflict(
            f"strategy {saved.id} is already deployed", {"deployment_id": current.id}, code="ALREADY_RUNNING"
        )
    dep = Deployment(
        strategy_id=saved.id,
        user_id=user.id,
        account_id=acct.id,
        strategy_version=saved.version,
        state="running",
        runtime={"positions": {}, "last_bar": {}, "bars": 0, "orders": 0},
        started_at=utcnow(),
    )
    db.session.add(dep)
    db.session.flush()
    _log(dep.id, "started", f"deployed {saved.strategy} v{saved.version} on account {acct.id}")
    db.session.commit()
    engine().start(dep, saved)
    return dep


def stop(user: User, strategy_id: int) -> Deployment:
    saved = _saved(user, strategy_id)
    dep = _current(saved.id)
    if dep is None or dep.state != "running":
        raise Conflict(f"strategy {saved.id} is not running", code="NOT_RUNNING")
    dep.state, dep.stopped_at = "stopped", utcnow()
    _log(dep.id, "stopped", "stopped by the user")
    db.session.commit()
    engine().stop(dep.id)
    return dep


def stop_for_strategy(strategy_id: int, reason: str) -> None:
    dep = _current(strategy_id)
    if dep is not None and dep.state == "running":
        dep.state, dep.stopped_at = "stopped", utcnow()
        _log(dep.id, "stopped", reason)
        engine().stop(dep.id)


def status(user: User, strategy_id: int) -> Deployment:
    saved = _saved(user, strategy_id)
    dep = _current(saved.id)
    if dep is None:
        raise NotFound(f"strategy {saved.id} was never deployed", code="NOT_DEPLOYED")
    return dep


def logs(user: User, strategy_id: int, limit: int, cursor: dict | None) -> Page:
    saved = _saved(user, strategy_id)
    ids = select(Deployment.id).where(Deployment.strategy_id == saved.id)
    stmt = select(DeploymentLog).where(DeploymentLog.deployment_id.in_(ids))
    return keyset_page(stmt, DeploymentLog.id, limit, cursor)


def resume_all(app: Flask) -> int:
    """Start-up: re-attach every deployment still marked running (its runtime state is in the row).

    The rows are updated in one short transaction, and the engines (whose warm-up fetches history)
    start after it committed: a transaction held across the warm-ups kept SQLite's write lock from
    every request for as long as they took after a restart (issue 17)."""
    with app.app_context():
        try:
            rows = list(db.session.scalars(select(Deployment).where(Deployment.state == "running")))
            resumed: list[int] = []
            for dep in rows:
                saved = db.session.get(SavedStrategy, dep.strategy_id)
                if saved is None or saved.is_deleted:
                    dep.state, dep.stopped_at = "stopped", utcnow()
                    continue
                resumed.append(dep.id)
                _log(dep.id, "resumed", "resumed after a restart")
            db.session.commit()
        except Exception:  # noqa: BLE001 - tables may not exist yet (before `flask db upgrade`)
            db.session.rollback()
            log.info("deployment resume skipped", exc_info=True)
            return 0
        for dep_id in resumed:
            dep = db.session.get(Deployment, dep_id)
            try:
                engine(app).start(dep, db.session.get(SavedStrategy, dep.strategy_id))
                db.session.commit()  # end this warm-up's transaction (history it cached stays)
            except Exception:  # noqa: BLE001 - one bad deployment must not keep the others down
                db.session.rollback()
                log.exception("deployment %s could not resume", dep_id)
        return len(rows)


def init_app(app: Flask) -> None:
    autostart = app.config.get("DEPLOYMENTS_AUTOSTART")
    if autostart is None:
        autostart = not app.config.get("TESTING")
    if autostart:
        resume_all(app)
        from backend.lifecycle import on_shutdown

        on_shutdown(app, "deployments", engine(app).shutdown)


def position_value(dep: Deployment) -> dict[str, Decimal]:
    return {s: Decimal(q) for s, q in (dep.runtime or {}).get("positions", {}).items()}
