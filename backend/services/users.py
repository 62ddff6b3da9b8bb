"""Admin use cases on users and the audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select

from backend.domain.errors import NotFound, ValidationFailed
from backend.extensions import db
from backend.models import AuditLog, User
from backend.services import audit
from backend.services.auth import ROLE_SCOPES, revoke_all_tokens
from backend.services.pagination import Page, keyset_page


def list_users(q: str | None, limit: int, cursor: dict | None) -> Page:
    stmt = select(User)
    if q:
        stmt = stmt.where(User.email.ilike(f"%{q.strip().lower()}%"))
    return keyset_page(stmt, User.id, limit, cursor)


def get_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"User {user_id} not found.")
    return user


def update_user(actor: User, user_id: int, role: str | None, is_active: bool | None) -> User:
    user = get_user(user_id)
    if user.id == actor.id and (is_active is False or (role and role != "admin")):
        raise ValidationFailed(
            "Admins cannot demote or deactivate themselves.",
            {"fields": {"role" if role else "is_active": ["Not allowed on yourself."]}},
        )
    changes = {}
    if role is not None and role != user.role:
        if role not in ROLE_SCOPES:
            raise ValidationFailed(f"Unknown role {role!r}.", {"fields": {"role": ["Unknown role."]}})
        changes["role"] = [user.role, role]
        user.role = role
        revoke_all_tokens(user)  # tokens carry the old role
    if is_active is not None and is_active != user.is_active:
        changes["is_active"] = [user.is_active, is_active]
        user.is_active = is_active
        if not is_active:
            revoke_all_tokens(user)
    if changes:
        audit.record(
            "user.update",
            actor_id=actor.id,
            actor_email=actor.email,
            target_type="user",
            target_id=user.id,
            details=changes,
        )
    db.session.commit()
    return user


def list_audit(
    user_id: int | None,
    action: str | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    cursor: dict | None,
) -> Page:
    stmt = select(AuditLog)
    if user_id is not None:
        stmt = stmt.where(
            or_(
                AuditLog.actor_id == user_id,
                (AuditLog.target_type == "user") & (AuditLog.target_id == str(user_id)),
            )
        )
    if action:
        stmt = stmt.where(AuditLog.action == action)
    if start:
        stmt = stmt.where(AuditLog.created_at >= start)
    if end:
        stmt = stmt.where(AuditLog.created_at < end)
    return keyset_page(stmt, AuditLog.id, limit, cursor)
