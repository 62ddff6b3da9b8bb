"""The revocation record of access tokens: durable in the database, cached in Redis.

Two kinds of entry, each kept until the tokens it kills would have expired anyway:

* ``<jti>``: one access token (logout);
* ``fam:<family>``: every access token of a login's refresh-token family (logout, refresh-token
  reuse), so a stolen access token of that login stops at once rather than at its expiry.

The database row is the record; Redis only caches it. Redis restarting empty must not resurrect
a logged-out token (issue 17), so the cache carries a *warm* marker: when it is missing (a fresh or
flushed Redis) the unexpired rows are copied back before Redis is trusted again.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import delete, select

from backend.extensions import db, redis_store
from backend.models import RevokedToken

_PREFIX = "jwt:revoked:"
_WARM = "jwt:revoked:__warm__"
FAMILY = "fam:"


def _store(key: str, exp: float) -> None:
    ttl = max(1, int(exp - time.time()))
    if db.session.get(RevokedToken, key) is None:
        db.session.add(RevokedToken(jti=key, expires_at=datetime.fromtimestamp(exp, UTC)))
    # Expired entries are useless: the token would fail its exp check anyway.
    db.session.execute(delete(RevokedToken).where(RevokedToken.expires_at < datetime.now(UTC)))
    client = redis_store.client
    if client is not None:
        client.set(_PREFIX + key, b"1", ex=ttl)


def revoke(jti: str, exp: float) -> None:
    """Revoke one access token (in the caller's transaction; cached in Redis at once)."""
    _store(jti, exp)


def revoke_family(family_id: str, until: float) -> None:
    """Revoke every access token of a refresh-token family issued before ``until``."""
    _store(FAMILY + family_id, until)


def _warm(client) -> None:
    now = datetime.now(UTC)
    rows = db.session.execute(
        select(RevokedToken.jti, RevokedToken.expires_at).where(RevokedToken.expires_at >= now)
    ).all()
    pipe = client.pipeline(transaction=False)
    for key, expires_at in rows:
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        pipe.set(_PREFIX + key, b"1", ex=max(1, int((expires_at - now).total_seconds())))
    pipe.set(_WARM, b"1")
    pipe.execute()


def is_revoked(jti: str, family_id: str | None = None) -> bool:
    keys = [jti] + ([FAMILY + family_id] if family_id else [])
    client = redis_store.client
    if client is not None:
        pipe = client.pipeline(transaction=False)
        pipe.exists(_WARM)
        for key in keys:
            pipe.exists(_PREFIX + key)
        warm, *hits = pipe.execute()
        if warm:
            return any(hits)
        _warm(client)  # Redis lost its copy: the database answers, and refills it
    return db.session.execute(select(RevokedToken.jti).where(RevokedToken.jti.in_(keys))).first() is not None
