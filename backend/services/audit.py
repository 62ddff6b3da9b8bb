"""Audit trail: each row stores the hash of the previous row, so edits and deletions show.

Writing and chaining are separate steps so that no lock on the chain is ever held while a
caller's transaction does other work (issue 17: a process-wide lock held across a PostgreSQL
lock wedged a worker for 11 minutes):

1. ``record`` inserts the row in the caller's transaction, unchained (``seq`` NULL). It takes no
   lock: rows of a transaction that rolls back vanish with it.
2. After that transaction commits, ``seal_pending`` chains every committed unchained row in one
   short transaction of its own, serialised in the database alone (``pg_advisory_xact_lock`` on
   PostgreSQL, SQLite's write lock taken before the head is read). A crash between the two steps
   leaves rows unchained; the next seal (any commit that audits, or ``verify_chain``) picks them up.
3. Each seal writes a signed *anchor* (the chain's row count and head hash, HMAC with
   ``SECRET_KEY``) to a file outside the database, so deleting the newest rows, or rewriting the
   whole chain, is detected by ``verify_chain`` even though the hashes themselves are unkeyed.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import current_app, g, has_app_context, has_request_context, request
from sqlalchemy import event, func, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from backend.database import claim_write_lock
from backend.extensions import db
from backend.models import AuditLog
from backend.models.base import utcnow

log = logging.getLogger(__name__)

GENESIS = "0" * 64
ADVISORY_KEY = 72177
_PENDING = "audit_pending"


def _canonical_ts(ts: datetime) -> str:
    if ts.tzinfo is None:  # SQLite returns naive datetimes; they were written as UTC
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def compute_hash(row: Any, prev_hash: str | None = None) -> str:
    """SHA-256 of the row's content and its predecessor's hash (``row`` is a model or a mapping)."""
    get = row.get if isinstance(row, Mapping) else (lambda k: getattr(row, k))
    payload = {
        "created_at": _canonical_ts(get("created_at")),
        "actor_id": get("actor_id"),
        "actor_email": get("actor_email"),
        "action": get("action"),
        "target_type": get("target_type"),
        "target_id": get("target_id"),
        "ip": get("ip"),
        "request_id": get("request_id"),
        "details": get("details") or {},
        "prev_hash": prev_hash if prev_hash is not None else get("prev_hash"),
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
    """Append an audit row in the current transaction (the caller commits; the row is chained after)."""
    if actor_id is None and has_request_context():
        user = getattr(g, "current_user", None)
        if user is not None:
            actor_id, actor_email = user.id, user.email
    ip = request.remote_addr if has_request_context() else None
    request_id = getattr(g, "request_id", None) if has_request_context() else None
    row = AuditLog(
        created_at=utcnow(),
        actor_id=actor_id,
        actor_email=actor_email[:255] if actor_email else actor_email,  # the column's width
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        ip=ip,
        request_id=request_id,
        details=details or {},
    )
    db.session.add(row)
    db.session.flush()
    db.session.info[_PENDING] = True
    return row


# --- sealing ----------------------------------------------------------------------------------------


def seal_pending(engine: Engine | None = None, batch: int = 500) -> int:
    """Chain every committed unchained row, in one short transaction; return how many were sealed."""
    engine = engine or db.engine
    t = AuditLog.__table__
    sealed = 0
    head: tuple[int, str] | None = None
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_KEY})
        else:
            claim_write_lock(conn)  # the head read below must not interleave with another sealer
        last = conn.execute(
            select(t.c.seq, t.c.hash).where(t.c.seq.is_not(None)).order_by(t.c.seq.desc()).limit(1)
        ).first()
        seq, prev = (last[0], last[1]) if last else (0, GENESIS)
        while True:
            rows = (
                conn.execute(select(t).where(t.c.seq.is_(None)).order_by(t.c.id).limit(batch))
                .mappings()
                .all()
            )
            if not rows:
                break
            for row in rows:
                seq += 1
                digest = compute_hash(row, prev)
                conn.execute(
                    update(t).where(t.c.id == row["id"]).values(seq=seq, prev_hash=prev, hash=digest)
                )
                prev = digest
                sealed += 1
        head = (seq, prev)
    if sealed:
        _write_anchor(*head)
    return sealed


@event.listens_for(Session, "after_commit")
def _seal_after_commit(session: Session) -> None:
    if not session.info.pop(_PENDING, False):
        return
    try:
        seal_pending(session.get_bind())
    except Exception:  # the business commit stands; the rows are sealed by the next seal
        log.exception("audit rows committed but not yet chained; the next seal will chain them")


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


# --- the anchor ----------------------------------------------------------------------------------


def anchor_path() -> Path:
    configured = current_app.config.get("AUDIT_ANCHOR_PATH")
    return Path(configured or Path(current_app.config["INSTANCE_PATH"]) / "audit-anchor.json")


def _signature(count: int, head: str) -> str:
    key = hashlib.sha256(b"audit-anchor:" + current_app.config["SECRET_KEY"].encode()).digest()
    return hmac.new(key, f"{count}:{head}".encode(), hashlib.sha256).hexdigest()


def read_anchor() -> dict[str, Any] | None:
    path = anchor_path()
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, OSError):
        return {"count": None, "head": None, "sig": None}  # unreadable counts as tampered


def _write_anchor(count: int, head: str) -> None:
    """Replace the anchor atomically, never with an older one (several workers seal concurrently)."""
    if not has_app_context():
        return
    path = anchor_path()
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        current = read_anchor()
        if current and isinstance(current.get("count"), int) and current["count"] >= count:
            return
        data = {
            "count": count,
            "head": head,
            "at": datetime.now(UTC).isoformat(),
            "sig": _signature(count, head),
        }
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".audit-anchor-")
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except OSError:
        log.exception("audit anchor could not be written", extra={"path": str(path)})
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


# --- verification --------------------------------------------------------------------------------


@dataclass
class ChainReport:
    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str | None = None


def verify_chain(batch: int = 1000) -> ChainReport:
    """Seal what is pending, recompute every hash in chain order, then check the anchor."""
    db.session.commit()  # end any open transaction: on SQLite it would hold the write lock the seal needs
    seal_pending()
    db.session.expire_all()
    prev = GENESIS
    checked = 0
    last_seq = 0
    while True:
        rows = db.session.scalars(
            select(AuditLog).where(AuditLog.seq > last_seq).order_by(AuditLog.seq).limit(batch)
        ).all()
        if not rows:
            break
        for row in rows:
            if row.seq != checked + 1 or row.prev_hash != prev:
                return ChainReport(False, checked, row.id, "prev_hash does not match the previous row")
            if compute_hash(row) != row.hash:
                return ChainReport(False, checked, row.id, "row content does not match its hash")
            prev = row.hash
            checked += 1
            last_seq = row.seq
    return _check_anchor(checked, prev)


def _check_anchor(checked: int, head: str) -> ChainReport:
    anchor = read_anchor()
    if anchor is None:
        if checked:
            return ChainReport(
                False,
                checked,
                None,
                f"the anchor file {anchor_path()} is missing (after upgrading an existing database, "
                "anchor the chain once with `flask audit anchor`)",
            )
        return ChainReport(True, 0)
    count, anchored_head = anchor.get("count"), anchor.get("head")
    if not isinstance(count, int) or not isinstance(anchored_head, str):
        return ChainReport(False, checked, None, "the anchor file is unreadable")
    if not hmac.compare_digest(str(anchor.get("sig")), _signature(count, anchored_head)):
        return ChainReport(
            False, checked, None, "the anchor's signature is invalid (forged, or SECRET_KEY changed)"
        )
    if checked < count:
        return ChainReport(
            False,
            checked,
            None,
            f"rows were deleted: the anchor records {count} rows, the chain has {checked}",
        )
    at = db.session.scalar(select(AuditLog.hash).where(AuditLog.seq == count))
    if at != anchored_head:
        return ChainReport(
            False, checked, None, f"the chain was rewritten: row {count} differs from the anchor"
        )
    return ChainReport(True, checked)


def anchor_current() -> int:
    """Seal what is pending and (re)write the anchor for the chain as it is now; return its rows."""
    db.session.commit()
    seal_pending()
    last = db.session.execute(
        select(AuditLog.seq, AuditLog.hash)
        .where(AuditLog.seq.is_not(None))
        .order_by(AuditLog.seq.desc())
        .limit(1)
    ).first()
    if last is None:
        return 0
    with contextlib.suppress(FileNotFoundError):
        anchor_path().unlink()
    _write_anchor(last[0], last[1])
    return last[0]


def pending_count() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.seq.is_(None))) or 0
