"""Audit trail: each row stores the hash of the previous row, so edits and deletions show."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import g, has_request_context, request
from sqlalchemy import select, text

from backend.extensions import db
from backend.models import AuditLog
from backend.models.base import utcnow

GENESIS = "0" * 64
_chain_lock = threading.Lock()


def _canonical_ts(ts: datetime) -> str:
    if ts.tzinfo is None:  # SQLite returns naive datetimes; they were written as UTC
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def compute_hash(row: AuditLog) -> str:
    payload = {
        "created_at": _canonical_ts(row.created_at),
        "actor_id": row.actor_id,
        "actor_email": row.actor_email,
        "action": row.action,
        "target_type": row.target_type,
        "target_id": row.target_id,
        "ip": row.ip,
        "request_id": row.request_id,
        "details": row.details or {},
        "prev_hash": row.prev_hash,
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def record(
    action: str,
    *,
    actor_id: int | None = None,
    actor_email: str | None = None,
    target_type: str | None = None,
    target_id: Any = None,
    details: dict[str, Any] | None = None,
) -> AuditLog:
    """Append an audit row in the current transaction (the caller commits)."""
    if actor_id is None and has_request_context():
        user = getattr(g, "current_user", None)
        if user is not None:
            actor_id, actor_email = user.id, user.email
    ip = request.remote_addr if has_request_context() else None
    request_id = getattr(g, "request_id", None) if has_request_context() else None
    with _chain_lock:
        if db.engine.dialect.name == "postgresql":
            # Serialise chain appends across processes for the rest of this transaction.
            db.session.execute(text("SELECT pg_advisory_xact_lock(72177)"))
        last = db.session.execute(select(AuditLog.hash).order_by(AuditLog.id.desc()).limit(1)).scalar()
        row = AuditLog(
            created_at=utcnow(),
            actor_id=actor_id,
            actor_email=actor_email,
            action=action,
            target_type=target_type,
            target_id=None if target_id is None else str(target_id),
            ip=ip,
            request_id=request_id,
            details=details or {},
            prev_hash=last or GENESIS,
        )
        row.hash = compute_hash(row)
        db.session.add(row)
        db.session.flush()
    return row


@dataclass
class ChainReport:
    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str | None = None


def verify_chain(batch: int = 1000) -> ChainReport:
    """Recompute every hash in id order; report the first row that does not match."""
    prev = GENESIS
    checked = 0
    last_id = 0
    while True:
        rows = db.session.scalars(
            select(AuditLog).where(AuditLog.id > last_id).order_by(AuditLog.id).limit(batch)
        ).all()
        if not rows:
            return ChainReport(ok=True, checked=checked)
        for row in rows:
            if row.prev_hash != prev:
                return ChainReport(False, checked, row.id, "prev_hash does not match the previous row")
            if compute_hash(row) != row.hash:
                return ChainReport(False, checked, row.id, "row content does not match its hash")
            prev = row.hash
            checked += 1
            last_id = row.id
