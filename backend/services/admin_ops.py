"""Admin operations: risk controls, cache, feed, jobs, broker, configuration, version and health.

Other domains are reached through the small adapter functions at the top (``_trading_risk``,
``_feed``, ``broker_status``...), so a missing or failing domain degrades to an ``unknown`` /
``down`` component instead of breaking the admin pages.
"""

from __future__ import annotations

import importlib.metadata as md
import logging
import platform
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import current_app
from sqlalchemy import func, select, text

from backend.domain.errors import NotFound, ServiceUnavailable
from backend.extensions import db, redis_store
from backend.observability.logging import REDACTED, SENSITIVE_KEYS, redact
from backend.services import audit

log = logging.getLogger(__name__)
STARTED_AT = time.time()
STARTED_AT_UTC = datetime.now(UTC)

#: Config keys whose values are credentials even though the name does not say so.
EXTRA_SECRET_KEYS = re.compile(r"(_KEY|_KEYS|PRIVATE|CREDENTIAL|DSN|SALT)$", re.IGNORECASE)
PACKAGES = (
    "flask",
    "flask-restx",
    "flask-sqlalchemy",
    "sqlalchemy",
    "alembic",
    "marshmallow",
    "flask-socketio",
    "flask-limiter",
    "redis",
    "requests",
    "numpy",
    "cryptography",
    "gunicorn",
    "opentelemetry-sdk",
)
FEED_LAG_WARN_S = 2.0
FEED_STALE_DOWN_S = 30.0


# --------------------------------------------------------------------------- adapters


def _trading_risk() -> Any:
    try:
        from backend.services.trading import risk
    except ImportError as exc:  # pragma: no cover - trading ships with the platform
        raise ServiceUnavailable("The trading service is not installed.") from exc
    return risk


def _feed() -> Any | None:
    try:
        from backend.realtime.feed import get_feed

        return get_feed(current_app._get_current_object())  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover
        return None


def broker_status() -> dict[str, Any]:
    """The broker engineer's ``broker_status()`` when present, else ``unknown``."""
    try:
        from backend.services.broker import broker_status as _status  # type: ignore[attr-defined]
    except ImportError:
        return {"status": "unknown", "detail": "broker service not installed"}
    try:
        return dict(_status())
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return {"status": "down", "error": type(exc).__name__}


def broker_circuit_state(st: dict[str, Any]) -> str:
    """``closed`` / ``half_open`` / ``open`` (or ``unknown``) from a broker status dict."""
    circuit = st.get("circuit")
    raw = circuit.get("state") if isinstance(circuit, dict) else None
    return str(raw or st.get("status") or st.get("state") or "unknown").lower()


# --------------------------------------------------------------------------- risk


def kill_switch_status() -> dict[str, Any]:
    return _trading_risk().global_kill_status()


def set_kill_switch(actor: Any, on: bool, reason: str = "") -> dict[str, Any]:
    """Halt (``on``) or resume trading on every account. Audited by the trading service."""
    return _trading_risk().set_global_kill_switch(actor, on, reason)


def account_states(limit: int, cursor: dict | None) -> Any:
    """A page of every account with its effective trading state and breaker."""
    from backend.models import User
    from backend.models.trading import TradingAccount
    from backend.services.pagination import keyset_page

    risk = _trading_risk()
    stmt = select(TradingAccount).where(TradingAccount.deleted_at.is_(None))
    page = keyset_page(stmt, TradingAccount.id, limit, cursor)
    emails = dict(
        db.session.execute(
            select(User.id, User.email).where(User.id.in_({a.user_id for a in page.items}))
        ).all()
    )
    page.items = [_account_view(risk, a, emails.get(a.user_id)) for a in page.items]
    return page


def _account_view(risk: Any, acct: Any, email: str | None) -> dict[str, Any]:
    view = risk.risk_view(acct)
    return {
        "account_id": acct.id,
        "user_id": acct.user_id,
        "user_email": email,
        "name": acct.name,
        "mode": acct.mode,
        "trading_state": view["trading_state"],
        "breaker": view["breaker"],
        "global_kill": view["global_kill"],
    }


def reset_breaker(actor: Any, account_id: int) -> dict[str, Any]:
    from backend.models import User
    from backend.models.trading import TradingAccount

    acct = db.session.get(TradingAccount, account_id)
    if acct is None or acct.deleted_at is not None:
        raise NotFound(f"Trading account {account_id} not found.")
    risk = _trading_risk()
    risk.reset_trip(actor, account_id)
    acct = db.session.get(TradingAccount, account_id)
    user = db.session.get(User, acct.user_id)
    return _account_view(risk, acct, user.email if user else None)


# --------------------------------------------------------------------------- cache


def cache_stats() -> dict[str, Any]:
    from backend.services.cache import get_cache

    return get_cache().stats()


def cache_flush(actor: Any, namespace: str | None) -> dict[str, Any]:
    from backend.services.cache import get_cache

    removed = get_cache().flush(namespace)
    audit.record(
        "ops.cache_flush",
        actor_id=actor.id,
        actor_email=actor.email,
        target_type="cache",
        target_id=namespace or "*",
        details={"removed": removed},
    )
    db.session.commit()
    return {"namespace": namespace, "removed": removed}


# --------------------------------------------------------------------------- feed


def feed_status() -> dict[str, Any]:
    feed = _feed()
    if feed is None:
        return {"running": False, "leader": False, "status": "unknown"}
    return feed.status()


def feed_restart(actor: Any) -> dict[str, Any]:
    """Kill this process's producer; the feed watchdog starts a fresh one (leader only)."""
    feed = _feed()
    if feed is None or not feed.running:
        raise ServiceUnavailable("The live feed is not running in this process.")
    if not feed.is_leader:
        raise ServiceUnavailable(
            "This worker does not lead the feed; the restart must reach the leader.",
            {"holder": feed.status().get("holder")},
        )
    gen = feed.kill_producer()
    audit.record(
        "ops.feed_restart", actor_id=actor.id, actor_email=actor.email, target_type="feed", target_id=gen
    )
    db.session.commit()
    return feed.status()


# --------------------------------------------------------------------------- jobs


def jobs_status(failed_limit: int = 20) -> dict[str, Any]:
    try:
        from backend.models.strategies import BacktestJob
    except ImportError:  # pragma: no cover
        return {"available": False, "queued": 0, "running": 0, "failed": 0, "recent_failed": []}
    counts = dict(
        db.session.execute(select(BacktestJob.status, func.count()).group_by(BacktestJob.status)).all()
    )
    failed = db.session.scalars(
        select(BacktestJob)
        .where(BacktestJob.status == "failed")
        .order_by(BacktestJob.created_at.desc())
        .limit(failed_limit)
    ).all()
    return {
        "available": True,
        "queued": counts.get("queued", 0),
        "running": counts.get("running", 0),
        "failed": counts.get("failed", 0),
        "succeeded": counts.get("succeeded", 0),
        "cancelled": counts.get("cancelled", 0),
        "recent_failed": [
            {
                "id": j.id,
                "user_id": j.user_id,
                "kind": j.kind,
                "error": (j.error or {}).get("message") or (j.error or {}).get("code"),
                "worker": j.worker,
                "created_at": j.created_at,
                "finished_at": j.finished_at,
            }
            for j in failed
        ],
    }


# --------------------------------------------------------------------------- configuration / version


def _mask_url(value: str) -> str:
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    if parts.password:
        netloc = f"{parts.username or ''}:{REDACTED}@{parts.hostname or ''}"
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)


def redacted_config() -> dict[str, Any]:
    """``app.config`` with every credential replaced by ``[REDACTED]`` (names and URLs checked)."""
    out: dict[str, Any] = {}
    for key in sorted(current_app.config):
        value = current_app.config[key]
        if SENSITIVE_KEYS.search(key) or EXTRA_SECRET_KEYS.search(key):
            out[key] = REDACTED if value not in (None, "", [], {}) else value
            continue
        value = _plain(value)
        if isinstance(value, str):
            value = _mask_url(value)
        out[key] = redact(value)
    return out


def version_info() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    try:
        app_version = md.version("tradeplatform")
    except md.PackageNotFoundError:
        app_version = _pyproject_version()
    return {
        "app": "tradeplatform",
        "version": app_version,
        "environment": current_app.config.get("ENV_NAME"),
        "started_at": STARTED_AT_UTC,
        "uptime_seconds": round(time.time() - STARTED_AT, 3),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": versions,
    }


def _pyproject_version() -> str | None:
    import os

    path = os.path.join(os.path.dirname(current_app.root_path), "pyproject.toml")
    try:
        import tomllib

        with open(path, "rb") as fh:
            return tomllib.load(fh)["project"]["version"]
    except (OSError, KeyError, ValueError):
        return None


# --------------------------------------------------------------------------- health


def _component(name: str, check) -> dict[str, Any]:
    try:
        status, detail = check()
    except Exception as exc:  # noqa: BLE001 - a failing component is shown, never raised
        log.warning("health component failed", extra={"component": name, "error": str(exc)})
        db.session.rollback()
        status, detail = "down", {"error": type(exc).__name__}
    return {"name": name, "status": status, "detail": detail}


def _db() -> tuple[str, dict]:
    t0 = time.perf_counter()
    db.session.execute(text("SELECT 1"))
    return "ok", {
        "dialect": db.engine.dialect.name,
        "latency_ms": round((time.perf_counter() - t0) * 1000, 2),
    }


def _redis() -> tuple[str, dict]:
    if redis_store.client is None:
        return "ok", {"configured": False, "note": "in-process fallbacks"}
    t0 = time.perf_counter()
    redis_store.client.ping()
    return "ok", {"configured": True, "latency_ms": round((time.perf_counter() - t0) * 1000, 2)}


def _feed_component() -> tuple[str, dict]:
    st = feed_status()
    if not st.get("running"):
        return "unknown", {"running": False, "holder": st.get("holder")}
    age = st.get("last_tick_age_seconds")
    lag = st.get("lag_seconds") or 0.0
    detail = {
        "leader": st.get("leader"),
        "holder": st.get("holder"),
        "lag_seconds": lag,
        "tick_age_seconds": age,
    }
    if not st.get("leader"):
        return ("ok" if st.get("holder") else "warn"), detail
    if age is not None and age > FEED_STALE_DOWN_S:
        return "down", detail
    return ("warn" if lag > FEED_LAG_WARN_S else "ok"), detail


def _broker() -> tuple[str, dict]:
    st = broker_status()
    raw = broker_circuit_state(st)
    status = {"closed": "ok", "ok": "ok", "half_open": "warn", "half-open": "warn", "open": "down"}.get(
        raw, raw
    )
    if status not in ("ok", "warn", "down"):
        status = "unknown"
    return status, st


def _jobs() -> tuple[str, dict]:
    st = jobs_status(failed_limit=0)
    st.pop("recent_failed", None)
    return ("warn" if st.get("queued", 0) > 100 else "ok"), st


def _workers() -> tuple[str, dict]:
    # Read the configuration rather than jobs.runner(): building a runner here would start a pool.
    cfg = current_app.config
    backend = cfg.get("JOBS_BACKEND", "auto")
    kind = "rq" if backend == "rq" or (backend == "auto" and cfg.get("REDIS_URL")) else "embedded"
    detail: dict[str, Any] = {"runner": kind, "started": "jobs_runner" in current_app.extensions}
    if kind == "embedded":
        detail["threads"] = int(cfg.get("JOBS_WORKERS", 2))
        return "ok", detail
    from rq import Worker

    n = len(Worker.all(connection=redis_store.client))
    detail["workers"] = n
    return ("ok" if n else "down"), detail


def _alerts() -> tuple[str, dict]:
    ev = current_app.extensions.get("alerts")
    if ev is None:
        return "unknown", {}
    return "ok", ev.status()


def health() -> dict[str, Any]:
    components = [
        _component("database", _db),
        _component("redis", _redis),
        _component("feed", _feed_component),
        _component("broker", _broker),
        _component("jobs", _jobs),
        _component("workers", _workers),
        _component("alerts", _alerts),
    ]
    rank = {"ok": 0, "unknown": 1, "warn": 2, "down": 3}
    worst = max((c["status"] for c in components), key=lambda s: rank.get(s, 1))
    overall = "down" if worst == "down" else ("warn" if worst == "warn" else "ok")
    return {"status": overall, "checked_at": datetime.now(UTC), "components": components}
