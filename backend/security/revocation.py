"""Access-token jti denylist: Redis when configured, else the database."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import delete, select

from backend.extensions import db, redis_store
from backend.models import RevokedToken

_PREFIX = "jwt:revoked:"


def revoke(jti: str, exp: int) -> None:
    ttl = max(1, int(exp - time.time()))
    client = redis_store.client
    if client is not None:
        client.set(_PREFIX + jti, b"1", ex=ttl)
        return
    if db.session.get(RevokedToken, jti) is None:
        db.session.add(RevokedToken(jti=jti, expires_at=datetime.fromtimestamp(exp, UTC)))
    # Expired entries are useless: the token would fail its exp check anyway.
    db.session.execute(delete(RevokedToken).where(RevokedToken.expires_at < datetime.now(UTC)))


def is_revoked(jti: str) -> bool:
    client = redis_store.client
    if client is not None:
        return bool(client.exists(_PREFIX + jti))
    return db.session.execute(select(RevokedToken.jti).where(RevokedToken.jti == jti)).first() is not None
