"""Registration, login, refresh-token rotation with reuse detection, logout and API keys."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from backend.domain.errors import AuthenticationFailed, Conflict, NotFound, PermissionDenied, ValidationFailed
from backend.extensions import db
from backend.models import ApiKey, RefreshToken, User
from backend.models.base import utcnow
from backend.realtime import live as live_rooms
from backend.security import jwt_tokens, revocation
from backend.security.passwords import hash_password, needs_rehash, verify_password
from backend.services import audit

log = logging.getLogger(__name__)
_DISCONNECT = "disconnect_rooms"
ROLE_SCOPES = {"admin": {"read", "trade", "admin"}, "trader": {"read", "trade"}, "viewer": {"read"}}
API_KEY_SCOPES = ("read", "trade")


@dataclass
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


def _settings() -> jwt_tokens.JwtSettings:
    return jwt_tokens.JwtSettings.from_config(current_app.config)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create_user(email: str, password: str, role: str = "trader", actor: User | None = None) -> User:
    email = normalise_email(email)
    if role not in ROLE_SCOPES:
        raise ValidationFailed(f"Unknown role {role!r}.", {"fields": {"role": ["Unknown role."]}})
    if db.session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(
            "A user with this email already exists.",
            {"fields": {"email": ["Already registered."]}},
            code="EMAIL_TAKEN",
        )
    user = User(email=email, password_hash=hash_password(password), role=role, is_active=True)
    db.session.add(user)
    db.session.flush()
    audit.record(
        "user.create",
        target_type="user",
        target_id=user.id,
        details={"email": email, "role": role, "by": actor.id if actor else None},
    )
    return user


def register(email: str, password: str) -> User:
    if not current_app.config["OPEN_REGISTRATION"]:
        raise PermissionDenied("Registration is closed on this server.", code="REGISTRATION_CLOSED")
    user = create_user(email, password, "trader")
    db.session.commit()
    return user


def _issue_pair(user: User, family_id: str | None = None) -> TokenPair:
    settings = _settings()
    family_id = family_id or uuid.uuid4().hex
    extra = {"tv": user.token_version, "fam": family_id, "role": user.role}
    access, _ = jwt_tokens.issue(settings, user_id=user.id, token_type="access", extra=extra)
    refresh, claims = jwt_tokens.issue(settings, user_id=user.id, token_type="refresh", extra=extra)
    db.session.add(
        RefreshToken(
            jti=claims["jti"],
            family_id=family_id,
            user_id=user.id,
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )
    )
    return TokenPair(access, refresh, settings.access_ttl)


def login(email: str, password: str) -> TokenPair:
    email = normalise_email(email)
    user = db.session.scalar(select(User).where(User.email == email))
    if not verify_password(user.password_hash if user else None, password) or user is None:
        audit.record("auth.login_failed", actor_email=email, details={"reason": "bad_credentials"})
        db.session.commit()
        raise AuthenticationFailed("Email or password is incorrect.", code="INVALID_CREDENTIALS")
    if not user.is_active:
        audit.record("auth.login_failed", actor_id=user.id, actor_email=email, details={"reason": "inactive"})
        db.session.commit()
        raise AuthenticationFailed("This account is deactivated.", code="USER_INACTIVE")
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    pair = _issue_pair(user)
    audit.record("auth.login", actor_id=user.id, actor_email=user.email)
    db.session.commit()
    return pair


def _revoke_family(family_id: str) -> None:
    """End a login: its refresh tokens, its access tokens (now, not at expiry) and its live sockets."""
    db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    settings = _settings()
    revocation.revoke_family(family_id, time.time() + settings.access_ttl + settings.leeway)
    _disconnect_after_commit(live_rooms.family_room(family_id))


def _disconnect_after_commit(room: str) -> None:
    db.session.info.setdefault(_DISCONNECT, []).append(room)


@event.listens_for(Session, "after_commit")
def _disconnect_revoked(session: Session) -> None:
    rooms = session.info.pop(_DISCONNECT, None)
    if not rooms:
        return
    from backend.realtime import disconnect_room

    for room in rooms:
        try:
            disconnect_room(room)
        except Exception:  # the revocation is committed; a connection still open fails its next check
            log.exception("could not disconnect revoked Socket.IO connections", extra={"room": room})


@event.listens_for(Session, "after_rollback")
def _forget_disconnects(session: Session) -> None:
    session.info.pop(_DISCONNECT, None)


def refresh(refresh_token: str) -> TokenPair:
    claims = jwt_tokens.decode(_settings(), refresh_token, "refresh")
    row = db.session.scalar(select(RefreshToken).where(RefreshToken.jti == claims["jti"]).with_for_update())
    if row is None:
        raise AuthenticationFailed("Refresh token is not recognised.", code="TOKEN_INVALID")
    if row.revoked_at is not None:
        raise AuthenticationFailed("Refresh token has been revoked.", code="TOKEN_REVOKED")
    if row.rotated_at is not None:
        # A rotated token came back: someone holds a stolen copy. Kill the whole family.
        _revoke_family(row.family_id)
        audit.record(
            "auth.refresh_reuse", actor_id=row.user_id, target_type="token_family", target_id=row.family_id
        )
        db.session.commit()
        raise AuthenticationFailed(
            "Refresh token reuse detected; all sessions of this login are revoked.", code="TOKEN_REUSED"
        )
    user = db.session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise AuthenticationFailed("This account is deactivated.", code="USER_INACTIVE")
    if claims.get("tv") != user.token_version:
        raise AuthenticationFailed("Token has been revoked.", code="TOKEN_REVOKED")
    row.rotated_at = utcnow()
    pair = _issue_pair(user, row.family_id)
    db.session.commit()
    return pair


def authenticate_access(token: str) -> tuple[User, dict[str, Any]]:
    claims = jwt_tokens.decode(_settings(), token, "access")
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub.isascii() or not sub.isdigit() or len(sub) > 18:
        # validly signed but not ours (another issuer's token format): refuse, never crash
        raise AuthenticationFailed("Token subject is invalid.", code="TOKEN_INVALID")
    if revocation.is_revoked(claims["jti"], claims.get("fam")):
        raise AuthenticationFailed("Token has been revoked.", code="TOKEN_REVOKED")
    user = db.session.get(User, int(sub))
    if user is None:
        raise AuthenticationFailed("Token is invalid.", code="TOKEN_INVALID")
    if not user.is_active:
        raise AuthenticationFailed("This account is deactivated.", code="USER_INACTIVE")
    if claims.get("tv") != user.token_version:
        raise AuthenticationFailed("Token has been revoked.", code="TOKEN_REVOKED")
    return user, claims


def logout(user: User, claims: dict[str, Any]) -> None:
    revocation.revoke(claims["jti"], claims["exp"])
    if claims.get("fam"):
        _revoke_family(claims["fam"])
    audit.record("auth.logout", actor_id=user.id, actor_email=user.email)
    db.session.commit()


def revoke_all_tokens(user: User) -> None:
    """Invalidate every token, API key and live connection of ``user`` (password, role, deactivation)."""
    user.token_version += 1
    _disconnect_after_commit(live_rooms.user_room(user.id))
    db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    db.session.execute(
        update(ApiKey)
        .where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def change_password(user: User, current: str, new: str) -> None:
    if not verify_password(user.password_hash, current):
        raise ValidationFailed(
            "Current password is incorrect.", {"fields": {"current_password": ["Incorrect password."]}}
        )
    user.password_hash = hash_password(new)
    # A changed password usually means a suspected leak: API keys made with the old one go too.
    revoke_all_tokens(user)
    audit.record("auth.password_change", actor_id=user.id, actor_email=user.email)
    db.session.commit()


# --- API keys -----------------------------------------------------------------------------------


def _hash_key(raw: str) -> str:
    # Keys are 256-bit random, so a fast hash is safe here (no dictionary to attack).
    return hashlib.sha256(raw.encode()).hexdigest()


def create_api_key(
    user: User, name: str, scopes: list[str], caller_scopes: set[str] | None = None
) -> tuple[ApiKey, str]:
    """A key never carries more than its creator's credential holds (``caller_scopes``)."""
    allowed = ROLE_SCOPES[user.role] if caller_scopes is None else set(caller_scopes) & ROLE_SCOPES[user.role]
    if not set(scopes) <= allowed:
        raise PermissionDenied(
            f"Your credential cannot grant scope(s): {', '.join(sorted(set(scopes) - allowed))}."
        )
    prefix = secrets.token_hex(4)
    raw = f"tp_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        user_id=user.id, name=name, prefix=prefix, key_hash=_hash_key(raw), scopes=sorted(set(scopes))
    )
    db.session.add(key)
    db.session.flush()
    audit.record(
        "api_key.create",
        target_type="api_key",
        target_id=key.id,
        details={"name": name, "scopes": key.scopes},
    )
    db.session.commit()
    return key, raw


def revoke_api_key(user: User, key_id: int) -> ApiKey:
    key = db.session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user.id))
    if key is None or key.revoked_at is not None:
        raise NotFound("API key not found.")
    key.revoked_at = utcnow()
    _disconnect_after_commit(live_rooms.api_key_room(key.id))
    audit.record("api_key.revoke", target_type="api_key", target_id=key.id)
    db.session.commit()
    return key


def list_api_keys(user: User) -> list[ApiKey]:
    return list(
        db.session.scalars(
            select(ApiKey).where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None)).order_by(ApiKey.id)
        )
    )


def authenticate_api_key(raw: str) -> tuple[User, ApiKey]:
    key = db.session.scalar(select(ApiKey).where(ApiKey.key_hash == _hash_key(raw)))
    if key is None or key.revoked_at is not None:
        raise AuthenticationFailed("API key is invalid or revoked.", code="API_KEY_INVALID")
    user = db.session.get(User, key.user_id)
    if user is None or not user.is_active:
        raise AuthenticationFailed("This account is deactivated.", code="USER_INACTIVE")
    key.last_used_at = utcnow()
    return user, key


def scopes_for(user: User, api_key: ApiKey | None) -> set[str]:
    if api_key is not None:
        return set(api_key.scopes) & ROLE_SCOPES[user.role]
    return set(ROLE_SCOPES[user.role])
