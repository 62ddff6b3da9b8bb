"""Alert use cases (CRUD, pause/resume, test fire, history, webhook secret) and the live evaluator.

The evaluator wraps the pure ``AlertEngine``. It subscribes to the tick bus, whose callbacks run only
in the process holding the feed leadership, so exactly one evaluator is live across workers. Rule
state is written on every firing (immediately) and checkpointed every ``ALERTS_CHECKPOINT_SECONDS``
(re-arming transitions), so a new evaluator built from the database never refires a crossing.

Webhooks are POSTed from a thread pool: tick processing never waits for a receiver.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask, current_app
from sqlalchemy import func, select, update

from backend.domain.alerts import AlertEngine, AlertRule, Firing
from backend.domain.alerts import webhooks as wh
from backend.domain.alerts.engine import STATE_VERSION
from backend.domain.errors import Conflict, NotFound, ValidationFailed
from backend.domain.market.types import Tick
from backend.extensions import db
from backend.models.alerts import (
    AlertEngineState,
    AlertHistory,
    AlertRuleRow,
    AlertWebhookAttempt,
    AlertWebhookSecret,
)
from backend.models.base import utcnow
from backend.services.pagination import Page, keyset_page

log = logging.getLogger(__name__)

LIVE_STATUSES = ("active", "paused")
EDITABLE = ("name", "symbol", "params", "recurring", "cooldown_seconds", "expires_at", "webhook_url")


def _aware(ts: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; they were written as UTC.
    if ts is not None and ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts


# --------------------------------------------------------------------------- adapters (other domains)


def emit_alert(user_id: int, payload: dict) -> None:
    """Socket.IO ``alert`` to ``user:{id}`` through the realtime helper; never raises."""
    try:
        from backend.realtime import emit_to_user

        emit_to_user(user_id, "alert", payload)
    except Exception:  # noqa: BLE001 - a Socket.IO hiccup must not lose the history row
        log.warning("alert emit failed", exc_info=True, extra={"user_id": user_id})


def feed_generation(app: Flask) -> int | None:
    """Generation of this process's feed producer (changes when leadership/producer changes)."""
    try:
        from backend.realtime.feed import get_feed

        feed = get_feed(app)
        return feed.generation if feed.is_leader else None
    except Exception:  # noqa: BLE001 - no feed service: a single process is its own leader
        return None


# --------------------------------------------------------------------------- webhook secret


def _fernet() -> MultiFernet:
    keys = current_app.config["TOKEN_ENCRYPTION_KEYS"]
    return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])


def webhook_secret_info(user_id: int) -> dict:
    row = db.session.get(AlertWebhookSecret, user_id)
    return {
        "configured": row is not None,
        "created_at": row.created_at if row else None,
        "rotated_at": row.updated_at if row else None,
        "secret": None,
    }


def rotate_webhook_secret(user: Any) -> dict:
    """Create or replace the user's signing secret. The plaintext is returned only here."""
    from backend.services import audit

    plain = "whsec_" + secrets.token_urlsafe(32)
    token = _fernet().encrypt(plain.encode()).decode()
    row = db.session.get(AlertWebhookSecret, user.id)
    if row is None:
        row = AlertWebhookSecret(user_id=user.id, secret_encrypted=token)
        db.session.add(row)
    else:
        row.secret_encrypted = token
        row.updated_at = utcnow()
    audit.record("alerts.webhook_secret.rotate", target_type="user", target_id=user.id)
    db.session.commit()
    info = webhook_secret_info(user.id)
    info["secret"] = plain
    return info


def _secret_for(user_id: int) -> str | None:
    row = db.session.get(AlertWebhookSecret, user_id)
    if row is None:
        return None
    try:
        return _fernet().decrypt(row.secret_encrypted.encode()).decode()
    except InvalidToken:
        log.error("webhook secret cannot be decrypted (key removed?)", extra={"user_id": user_id})
        return None


# --------------------------------------------------------------------------- CRUD


def _validate_webhook(url: str | None, user_id: int) -> str | None:
    if not url:
        return None
    try:
        wh.validate_url(url, allow_private=current_app.config["ALERTS_ALLOW_PRIVATE_WEBHOOKS"])
    except ValidationFailed as exc:
        raise ValidationFailed(exc.message, {"fields": {"webhook_url": [exc.message]}}) from exc
    if db.session.get(AlertWebhookSecret, user_id) is None:
        raise ValidationFailed(
            "Create a webhook signing secret first (POST /alerts/webhook-secret/rotate).",
            {"fields": {"webhook_url": ["No webhook secret configured."]}},
        )
    return url


def _domain_rule(row: AlertRuleRow) -> AlertRule:
    return AlertRule(
        id=row.id,
        user_id=row.user_id,
        symbol=row.symbol,
        kind=row.kind,
        params=dict(row.params or {}),
        recurring=bool(row.recurring),
        cooldown_seconds=int(row.cooldown_seconds or 0),
        expires_at=_aware(row.expires_at),
        active=row.status == "active",
    )


def _field_error(exc: ValidationFailed) -> ValidationFailed:
    """Domain rule errors name a param; present them under ``details.fields`` like schema errors."""
    details = exc.details or {}
    name = details.get("field") or "params"
    if name not in ("symbol", "kind", "cooldown_seconds", "expires_at", "webhook_url"):
        name = "params"
    return ValidationFailed(exc.message, {"fields": {name: [exc.message]}})


def _check_symbol(symbol: str) -> None:
    """An alert on a symbol that is not listed could never fire: refuse it ("*" is the portfolio)."""
    from backend.services.market_data import find_instrument

    if symbol != "*" and find_instrument(symbol) is None:
        raise ValidationFailed(
            f"Unknown symbol: {symbol}.", {"fields": {"symbol": [f"Unknown symbol: {symbol}."]}}
        )


def live_count(user_id: int) -> int:
    return db.session.scalar(
        select(func.count(AlertRuleRow.id)).where(
            AlertRuleRow.user_id == user_id,
            AlertRuleRow.deleted_at.is_(None),
            AlertRuleRow.status.in_(LIVE_STATUSES),
        )
    )


def create_rule(user: Any, data: dict) -> AlertRuleRow:
    cap = current_app.config["ALERTS_MAX_RULES_PER_USER"]
    if live_count(user.id) >= cap:
        raise ValidationFailed(
            f"Too many active alert rules: the cap is {cap} per user.",
            {"cap": cap, "fields": {"_schema": ["cap"]}},
        )
    row = AlertRuleRow(
        user_id=user.id,
        name=data.get("name"),
        symbol=data["symbol"].strip().upper(),
        kind=data["kind"],
        params=dict(data.get("params") or {}),
        recurring=bool(data.get("recurring", False)),
        cooldown_seconds=int(data.get("cooldown_seconds") or 0),
        expires_at=data.get("expires_at"),
        status="active",
    )
    _check_symbol(row.symbol)
    if row.expires_at is not None and row.expires_at <= utcnow():
        raise ValidationFailed(
            "expires_at is in the past.", {"fields": {"expires_at": ["Must be in the future."]}}
        )
    try:
        row.params = _domain_rule(row).params  # validated, normalised
    except ValidationFailed as exc:
        raise _field_error(exc) from exc
    row.webhook_url = _validate_webhook(data.get("webhook_url"), user.id)
    db.session.add(row)
    db.session.commit()
    _notify(row)
    return row


def get_rule(user: Any, rule_id: int) -> AlertRuleRow:
    row = db.session.get(AlertRuleRow, rule_id)
    if row is None or row.deleted_at is not None or row.user_id != user.id:
        raise NotFound(f"Alert rule {rule_id} not found.")
    return row


def list_rules(user: Any, status: str | None, symbol: str | None, limit: int, cursor: dict | None) -> Page:
    stmt = select(AlertRuleRow).where(AlertRuleRow.user_id == user.id, AlertRuleRow.deleted_at.is_(None))
    if status:
        stmt = stmt.where(AlertRuleRow.status == status)
    if symbol:
        stmt = stmt.where(AlertRuleRow.symbol == symbol.strip().upper())
    return keyset_page(stmt, AlertRuleRow.id, limit, cursor)


def update_rule(user: Any, rule_id: int, data: dict) -> AlertRuleRow:
    row = get_rule(user, rule_id)
    if row.status in ("done", "expired"):
        raise Conflict(f"Alert rule {rule_id} is {row.status}; create a new one.")
    before = (row.symbol, dict(row.params or {}), row.kind)
    for name in EDITABLE:
        if name in data and name != "webhook_url":
            setattr(row, name, data[name])
    if "symbol" in data:
        row.symbol = data["symbol"].strip().upper()
        try:
            _check_symbol(row.symbol)
        except ValidationFailed:
            db.session.rollback()
            raise
    if "webhook_url" in data:
        row.webhook_url = _validate_webhook(data["webhook_url"], user.id)
    if row.expires_at is not None and _aware(row.expires_at) <= utcnow():
        db.session.rollback()
        raise ValidationFailed(
            "expires_at is in the past.", {"fields": {"expires_at": ["Must be in the future."]}}
        )
    try:
        row.params = _domain_rule(row).params
    except ValidationFailed as exc:
        db.session.rollback()
        raise _field_error(exc) from exc
    if (row.symbol, dict(row.params), row.kind) != before:
        row.state = None  # a new condition: the engine re-derives the armed state
    db.session.commit()
    _notify(row)
    return row


def delete_rule(user: Any, rule_id: int) -> None:
    row = get_rule(user, rule_id)
    row.soft_delete()
    db.session.commit()
    _notify(row)


def set_paused(user: Any, rule_id: int, paused: bool) -> AlertRuleRow:
    row = get_rule(user, rule_id)
    if row.status in ("done", "expired"):
        raise Conflict(f"Alert rule {rule_id} is {row.status} and cannot be paused or resumed.")
    row.status = "paused" if paused else "active"
    db.session.commit()
    _notify(row)
    return row


def list_history(
    user: Any,
    rule_id: int | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    cursor: dict | None,
) -> Page:
    stmt = select(AlertHistory).where(AlertHistory.user_id == user.id)
    if rule_id is not None:
        stmt = stmt.where(AlertHistory.rule_id == rule_id)
    if start:
        stmt = stmt.where(AlertHistory.fired_at >= start)
    if end:
        stmt = stmt.where(AlertHistory.fired_at < end)
    return keyset_page(stmt, AlertHistory.id, limit, cursor)


def webhook_attempts(user: Any, history_id: int) -> list[AlertWebhookAttempt]:
    hist = db.session.get(AlertHistory, history_id)
    if hist is None or hist.user_id != user.id:
        raise NotFound(f"Alert history entry {history_id} not found.")
    stmt = select(AlertWebhookAttempt).where(AlertWebhookAttempt.history_id == history_id)
    return list(db.session.scalars(stmt.order_by(AlertWebhookAttempt.id)).all())


def test_fire(user: Any, rule_id: int) -> AlertHistory:
    """Send a test notification for the rule (history row flagged ``is_test``, socket event, webhook)."""
    row = get_rule(user, rule_id)
    firing = Firing(
        row.id,
        row.user_id,
        row.symbol,
        row.kind,
        None,
        f"Test notification for alert {row.name or row.id} ({row.kind} on {row.symbol})",
        utcnow(),
        {"test": True},
    )
    return get_evaluator().record_firings([firing], test=True)[0]


def _notify(row: AlertRuleRow) -> None:
    evaluator = current_app.extensions.get("alerts")
    if evaluator is not None and evaluator.loaded:
        evaluator.upsert(row)


# --------------------------------------------------------------------------- evaluator


class AlertEvaluator:
    """Owns the engine of this process; fed by the tick bus (leader only) and by P&L/signal events."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        cfg = app.config
        self.checkpoint_every = float(cfg.get("ALERTS_CHECKPOINT_SECONDS", 5.0))
        self.sync_every = float(cfg.get("ALERTS_SYNC_SECONDS", 2.0))
        self.lock = threading.RLock()
        self.engine = AlertEngine(max_rules_per_user=10**9)  # the cap is enforced at creation
        self.loaded = False
        self.generation: int | None = None
        self._saved: dict[Any, dict] = {}
        self._last_checkpoint = time.monotonic()
        self._last_sync_wall: datetime | None = None
        self._last_sync = time.monotonic()
        self._executor: ThreadPoolExecutor | None = None
        self._futures: list[Future] = []
        # Injection points for tests: HTTP session factory and the retry sleep.
        self.session_factory: Callable[[], Any] = _requests_session
        self.sleep: Callable[[float], None] = time.sleep
        self.ticks = 0
        self.fired = 0

    # ------------------------------------------------------------------ loading / syncing

    def load(self) -> None:
        """(Re)build the engine from the database: rule definitions, rule states and series."""
        with self.lock:
            self.engine = AlertEngine(max_rules_per_user=10**9)
            self._saved = {}
            self._last_sync_wall = utcnow()
            rows = db.session.scalars(
                select(AlertRuleRow).where(
                    AlertRuleRow.deleted_at.is_(None), AlertRuleRow.status.in_(LIVE_STATUSES)
                )
            ).all()
            series = db.session.get(AlertEngineState, "series")
            self.engine.load_state(
                {
                    "version": STATE_VERSION,
                    "symbols": dict(series.data) if series else {},
                    "rules": [{"id": r.id, "state": r.state} for r in rows if r.state],
                }
            )
            for row in rows:
                self._add_row(row)
                if row.state:
                    self._saved[row.id] = row.state
            self.loaded = True
            self._last_sync = time.monotonic()
            self._last_checkpoint = time.monotonic()

    def _add_row(self, row: AlertRuleRow) -> None:
        try:
            self.engine.add(_domain_rule(row))
        except Exception:  # noqa: BLE001 - one unreadable rule must not stop the others
            log.exception("alert rule could not be loaded", extra={"rule_id": row.id})

    def upsert(self, row: AlertRuleRow) -> None:
        """Apply a rule's current definition (created, edited, paused, deleted) to the engine."""
        with self.lock:
            present = row.id in self.engine._rules
            if row.deleted_at is not None or row.status not in LIVE_STATUSES:
                if present:
                    self.engine.remove(row.id)
                self._saved.pop(row.id, None)
                return
            rule = _domain_rule(row)
            if not present:
                if row.state:
                    self.engine.load_state(
                        {
                            "version": STATE_VERSION,
                            "symbols": {},
                            "rules": [{"id": row.id, "state": row.state}],
                        }
                    )
                self._add_row(row)
                return
            current = self.engine.get(row.id)
            if current.to_dict() == rule.to_dict():
                return
            if row.state is None and (current.symbol, current.params) != (rule.symbol, rule.params):
                self._saved.pop(row.id, None)
            self.engine.update(
                row.id,
                symbol=rule.symbol,
                params=rule.params,
                recurring=rule.recurring,
                cooldown_seconds=rule.cooldown_seconds,
                expires_at=rule.expires_at,
                active=rule.active,
            )

    def sync(self) -> None:
        """Pick up rules changed by other workers since the last sync (idempotent, overlapping)."""
        since = (self._last_sync_wall or utcnow()) - timedelta(seconds=1)
        self._last_sync_wall = utcnow()
        self._last_sync = time.monotonic()
        rows = db.session.scalars(select(AlertRuleRow).where(AlertRuleRow.updated_at >= since)).all()
        for row in rows:
            self.upsert(row)

    def symbols(self) -> set[str]:
        """Symbols with live tick rules: the feed keeps producing them even if no browser watches."""
        with self.lock:
            return {r.symbol for r in self.engine._rules.values() if r.spec.source == "tick" and r.active}

    # ------------------------------------------------------------------ events

    def on_tick(self, tick: Tick) -> list[AlertHistory]:
        if not self.loaded:
            self.load()
        elif time.monotonic() - self._last_sync >= self.sync_every:
            self.sync()
        with self.lock:
            firings = self.engine.on_tick(tick)
            expired = self.engine.pop_expired()
            self.ticks += 1
        out = self._after(firings, expired)
        if time.monotonic() - self._last_checkpoint >= self.checkpoint_every:
            self.checkpoint()
        return out

    def on_pnl(self, user_id: int, symbol: str, pnl: Decimal, ts: datetime) -> list[AlertHistory]:
        if not self.loaded:
            self.load()
        with self.lock:
            firings = self.engine.on_pnl(user_id, symbol, pnl, ts)
            expired = self.engine.pop_expired()
        return self._after(firings, expired)

    def on_signal(
        self,
        strategy: str,
        symbol: str,
        signal: str,
        ts: datetime,
        user_id: int | None = None,
        payload: dict | None = None,
    ) -> list[AlertHistory]:
        if not self.loaded:
            self.load()
        with self.lock:
            firings = self.engine.on_signal(strategy, symbol, signal, ts, user_id, payload)
            expired = self.engine.pop_expired()
        return self._after(firings, expired)

    def _after(self, firings: list[Firing], expired: list[Any]) -> list[AlertHistory]:
        if expired:
            db.session.execute(
                update(AlertRuleRow).where(AlertRuleRow.id.in_(expired)).values(status="expired")
            )
            for rid in expired:
                self._saved.pop(rid, None)
        if not firings:
            db.session.commit()  # also ends a read transaction opened by sync()
            return []
        return self.record_firings(firings)

    # ------------------------------------------------------------------ firing side effects

    def record_firings(self, firings: list[Firing], test: bool = False) -> list[AlertHistory]:
        """Persist rule state + a history row per firing, then emit and queue webhooks."""
        rows: list[tuple[AlertHistory, str | None]] = []
        for f in firings:
            rule_row = db.session.get(AlertRuleRow, f.rule_id)
            if not test and rule_row is not None:
                with self.lock:
                    state = self.engine._states.get(f.rule_id)
                    if state is not None:
                        rule_row.state = state.to_dict()
                        self._saved[f.rule_id] = rule_row.state
                        if state.done:
                            rule_row.status = "done"
                            self.engine.remove(f.rule_id)
                            self._saved.pop(f.rule_id, None)
                rule_row.fire_count = (rule_row.fire_count or 0) + 1
                rule_row.last_fired_at = f.fired_at
            url = rule_row.webhook_url if rule_row is not None else None
            hist = AlertHistory(
                rule_id=f.rule_id,
                user_id=f.user_id,
                symbol=f.symbol,
                kind=f.kind,
                price=f.price,
                message=f.message,
                payload=_jsonable(f.payload),
                is_test=test,
                fired_at=f.fired_at,
                webhook_status="pending" if url else None,
            )
            db.session.add(hist)
            rows.append((hist, url))
        db.session.flush()
        # Payloads are built before the commit: touching expired rows afterwards would open a new
        # transaction (BEGIN IMMEDIATE on SQLite) that the webhook threads would have to wait for.
        sends = [(h.id, h.user_id, url, history_payload(h)) for h, url in rows]
        db.session.commit()
        self.fired += len(rows)
        for hid, uid, url, payload in sends:
            emit_alert(uid, payload)
            if url:
                self._submit(hid, uid, url, {"event": "alert.fired", "data": payload})
        return [h for h, _ in rows]

    def _submit(self, history_id: int, user_id: int, url: str, body: dict) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=max(1, int(self.app.config.get("ALERTS_WEBHOOK_WORKERS", 4))),
                thread_name_prefix="alert-webhook",
            )
        fut = self._executor.submit(self._deliver, history_id, user_id, url, body)
        self._futures = [f for f in self._futures if not f.done()] + [fut]

    def _deliver(self, history_id: int, user_id: int, url: str, body: dict) -> str:
        cfg = self.app.config
        with self.app.app_context():
            try:
                secret = _secret_for(user_id)
                status = "failed"
                attempts: list[wh.Attempt] = []
                if secret is None:
                    status = "refused"
                    attempts = [wh.Attempt(1, None, "no webhook secret", 0.0, False, False, time.time())]
                else:
                    try:
                        attempts = wh.deliver(
                            url,
                            body,
                            secret,
                            self.session_factory(),
                            max_attempts=int(cfg.get("ALERTS_WEBHOOK_MAX_ATTEMPTS", 5)),
                            backoff_base=float(cfg.get("ALERTS_WEBHOOK_BACKOFF_SECONDS", 1.0)),
                            timeout=float(cfg.get("ALERTS_WEBHOOK_TIMEOUT_SECONDS", 10.0)),
                            allow_private=bool(cfg.get("ALERTS_ALLOW_PRIVATE_WEBHOOKS", False)),
                            sleep=self.sleep,
                        )
                        status = "delivered" if attempts and attempts[-1].ok else "failed"
                    except ValidationFailed as exc:  # SSRF policy (DNS may have changed since creation)
                        status = "refused"
                        attempts = [wh.Attempt(1, None, f"refused: {exc}", 0.0, False, False, time.time())]
                for a in attempts:
                    db.session.add(
                        AlertWebhookAttempt(
                            history_id=history_id,
                            url=url,
                            attempt=a.attempt,
                            status_code=a.status_code,
                            error=(a.error or "")[:500] or None,
                            ok=a.ok,
                            duration_ms=a.duration_ms,
                            attempted_at=datetime.fromtimestamp(a.at, UTC),
                        )
                    )
                    log.info(
                        "alert webhook attempt",
                        extra={
                            "history_id": history_id,
                            "attempt": a.attempt,
                            "status_code": a.status_code,
                            "ok": a.ok,
                            "error": a.error,
                        },
                    )
                hist = db.session.get(AlertHistory, history_id)
                if hist is not None:
                    hist.webhook_status = status
                db.session.commit()
                return status
            except Exception:
                log.exception("alert webhook delivery crashed", extra={"history_id": history_id})
                db.session.rollback()
                raise
            finally:
                db.session.remove()

    def drain(self, timeout: float = 30.0) -> None:
        """Wait for queued webhook deliveries (tests, shutdown)."""
        for fut in list(self._futures):
            fut.result(timeout=timeout)
        self._futures = []

    # ------------------------------------------------------------------ checkpoints

    def checkpoint(self) -> int:
        """Write every rule state that changed since the last save, and the symbol series."""
        with self.lock:
            data = self.engine.export_state()
        changed = [(e["id"], e["state"]) for e in data["rules"] if self._saved.get(e["id"]) != e["state"]]
        for rid, state in changed:
            db.session.execute(update(AlertRuleRow).where(AlertRuleRow.id == rid).values(state=state))
            self._saved[rid] = state
        row = db.session.get(AlertEngineState, "series")
        if row is None:
            db.session.add(AlertEngineState(key="series", data=data["symbols"]))
        else:
            row.data = data["symbols"]
        db.session.commit()
        self._last_checkpoint = time.monotonic()
        return len(changed)

    def status(self) -> dict:
        with self.lock:
            return {
                "loaded": self.loaded,
                "rules": len(self.engine),
                "ticks": self.ticks,
                "fired": self.fired,
                "pending_webhooks": sum(1 for f in self._futures if not f.done()),
            }

    def shutdown(self, wait: bool = False) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=wait, cancel_futures=False)
            self._executor = None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)


def history_payload(hist: AlertHistory) -> dict:
    """The ``alert`` socket event body and the webhook's ``data`` field."""
    return {
        "id": hist.id,
        "rule_id": hist.rule_id,
        "symbol": hist.symbol,
        "kind": hist.kind,
        "price": str(Decimal(hist.price).quantize(Decimal("0.0001"))) if hist.price is not None else None,
        "message": hist.message,
        "payload": hist.payload or {},
        "fired_at": _aware(hist.fired_at).isoformat(),
        "test": bool(hist.is_test),
    }


def _requests_session() -> Any:
    import requests

    return requests.Session()


# --------------------------------------------------------------------------- wiring


def get_evaluator(app: Flask | None = None) -> AlertEvaluator:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    ev = app.extensions.get("alerts")
    if ev is None:
        ev = app.extensions["alerts"] = AlertEvaluator(app)
    return ev


def on_pnl(user_id: int, symbol: str, pnl: Decimal, ts: datetime) -> list[AlertHistory]:
    """For the trading service: a position's (or ``symbol="*"`` portfolio) P&L changed."""
    return get_evaluator().on_pnl(user_id, symbol, pnl, ts)


def on_signal(
    strategy: str,
    symbol: str,
    signal: str,
    ts: datetime,
    user_id: int | None = None,
    payload: dict | None = None,
) -> list[AlertHistory]:
    """For the strategies service: a strategy emitted a signal."""
    return get_evaluator().on_signal(strategy, symbol, signal, ts, user_id, payload)


def init_app(app: Flask) -> None:
    """Create the evaluator and subscribe it to the tick bus (not in tests unless ALERTS_SUBSCRIBE)."""
    evaluator = get_evaluator(app)
    if not app.config.get("ALERTS_ENABLED", True):
        return
    if not app.config.get("ALERTS_SUBSCRIBE", not app.config.get("TESTING")):
        return
    try:
        from backend.realtime.bus import tick_bus
    except ImportError:  # pragma: no cover - realtime is part of the platform
        log.warning("tick bus unavailable: alerts are not evaluated")
        return

    def on_tick(tick: Tick) -> None:
        # Called in the feed producer thread of the leader: a new producer generation means we may
        # have been away (another worker led), so rebuild from the database first.
        gen = feed_generation(app)
        if evaluator.loaded and gen is not None and gen != evaluator.generation:
            evaluator.load()
        evaluator.generation = gen
        evaluator.on_tick(tick)

    def wanted() -> set[str]:
        if not evaluator.loaded:
            evaluator.load()
        return evaluator.symbols()

    sub = tick_bus.subscribe(on_tick, symbols=wanted, name="alerts")
    from backend.lifecycle import on_shutdown

    def stop() -> None:
        tick_bus.unsubscribe(sub)
        evaluator.shutdown(wait=True)  # deliver the webhooks already fired (each has its timeout)

    on_shutdown(app, "alerts", stop)
