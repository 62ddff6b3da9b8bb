"""Liveness, readiness and Prometheus metrics (outside the versioned API)."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable

from flask import Blueprint, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from backend.domain.errors import AuthenticationFailed
from backend.extensions import db, redis_store
from backend.observability.metrics import exposition_registry

log = logging.getLogger(__name__)
ops = Blueprint("ops", __name__)

# Extra readiness checks registered by domains: name -> fn() -> (ok, detail dict).
READINESS_CHECKS: dict[str, Callable[[], tuple[bool, dict]]] = {}


def register_readiness_check(name: str, check: Callable[[], tuple[bool, dict]]) -> None:
    READINESS_CHECKS[name] = check


def _check_db() -> tuple[bool, dict]:
    db.session.execute(text("SELECT 1"))
    return True, {"dialect": db.engine.dialect.name}


def _check_redis() -> tuple[bool, dict]:
    if redis_store.client is None:
        return True, {"configured": False}
    redis_store.client.ping()
    return True, {"configured": True}


@ops.get("/health/live")
def live():
    return jsonify({"status": "ok"})


live.public = True


@ops.get("/health/ready")
def ready():
    checks = {"database": _check_db, "redis": _check_redis, **READINESS_CHECKS}
    components = {}
    healthy = True
    for name, check in checks.items():
        try:
            ok, detail = check()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported per component
            log.warning("readiness check failed", extra={"component": name, "error": str(exc)})
            ok, detail = False, {"error": type(exc).__name__}
        components[name] = {"status": "ok" if ok else "down", **detail}
        healthy &= ok
    body = {"status": "ok" if healthy else "down", "components": components}
    return jsonify(body), (200 if healthy else 503)


ready.public = True


@ops.get("/metrics")
def metrics():
    token = current_app.config.get("METRICS_TOKEN")
    if token:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(sent.encode(), token.encode()):
            raise AuthenticationFailed("Metrics need the METRICS_TOKEN bearer token.", code="UNAUTHORIZED")
    registry = exposition_registry(current_app.config.get("PROMETHEUS_MULTIPROC_DIR"))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
