"""Server-rendered admin pages (Jinja): login, health, users, audit, risk, jobs.

Authentication is a signed cookie session (HttpOnly, SameSite=Lax, Secure on HTTPS) separate from the
API's Bearer tokens. The views are marked public for the API's JWT hook and protected here instead:
``_require_admin`` redirects anonymous visitors to ``/admin/login``; every POST carries a per-session
CSRF token. Only role ``admin`` may log in; the session dies when the user is deactivated, demoted
or changes password (``token_version``).
"""

from __future__ import annotations

import hmac
import secrets
import time
from functools import wraps
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import select

from backend.domain.errors import DomainError
from backend.extensions import db, limiter

bp = Blueprint("admin_ui", __name__, url_prefix="/admin", template_folder="templates")
STATIC_DIR = Path(__file__).parent / "static"
OPEN_ENDPOINTS = {"admin_ui.login", "admin_ui.static_files"}
CSRF_FIELD = "csrf_token"
_SID_PREFIX = "admin:"  # admin sessions ended by logout share the access-token revocation record


class AdminSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, with ``Secure`` set whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        from flask import has_request_context

        return bool(app.config.get("SESSION_COOKIE_SECURE")) or (has_request_context() and request.is_secure)


def _public(view):
    view.public = True  # for backend.api.security.enforce_authentication; guarded by _require_admin
    return view


def route(rule: str, **options: Any):
    def decorator(func):
        return bp.route(rule, **options)(_public(func))

    return decorator


def csrf_token() -> str:
    token = session.get("admin_csrf")
    if not token:
        token = session["admin_csrf"] = secrets.token_urlsafe(32)
    return token


def _current_admin():
    from backend.models import User

    uid = session.get("admin_uid")
    if not uid or session.get("admin_exp", 0) < time.time():
        return None
    from backend.security import revocation

    sid = session.get("admin_sid")
    if not sid or revocation.is_revoked(_SID_PREFIX + sid):
        return None  # logged out: a replayed copy of the cookie is dead on the server
    user = db.session.get(User, uid)
    if user is None or not user.is_active or user.role != "admin":
        return None
    if session.get("admin_tv") != user.token_version:
        return None
    return user


@bp.before_request
def _require_admin():
    if request.endpoint in OPEN_ENDPOINTS:
        if request.method == "POST":
            _check_csrf()
        return None
    user = _current_admin()
    if user is None:
        session.pop("admin_uid", None)
        return redirect(url_for("admin_ui.login", next=request.path))
    g.admin_user = user
    if request.method == "POST":
        _check_csrf()
    return None


def _check_csrf() -> None:
    sent = request.form.get(CSRF_FIELD, "")
    expected = session.get("admin_csrf", "")
    if not expected or not sent or not hmac.compare_digest(sent, expected):
        abort(400, description="CSRF token missing or invalid; reload the page and try again.")


@bp.app_template_global("admin_csrf_token")
def _csrf_global() -> str:
    return csrf_token()


@bp.errorhandler(400)
def _bad_request(exc):
    return render_template("admin/error.html", message=getattr(exc, "description", "Bad request")), 400


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/admin/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("admin_ui.health")


def _login_limit() -> str:
    return current_app.config.get("RATELIMIT_ADMIN_LOGIN", "5 per minute")


# --------------------------------------------------------------------------- auth pages


@route("/static/<path:filename>")
def static_files(filename: str):
    return send_from_directory(STATIC_DIR, filename, max_age=3600)


@route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():
    from backend.models import User
    from backend.security.passwords import verify_password
    from backend.services import audit
    from backend.services.auth import normalise_email

    if request.method == "GET":
        if _current_admin() is not None:
            return redirect(url_for("admin_ui.health"))
        return render_template("admin/login.html", next=request.args.get("next", ""))
    email = normalise_email(request.form.get("email", ""))
    password = request.form.get("password", "")
    # No stored email is longer than 254 or holds a NUL (which PostgreSQL refuses outright): such
    # input is a failed login, never a query, and is audited in a form the column can store.
    plausible = len(email) <= 254 and "\x00" not in email
    user = db.session.scalar(select(User).where(User.email == email)) if plausible else None
    if not plausible:
        email = email.replace("\x00", "?")[:254]
    ok = verify_password(user.password_hash if user else None, password) and user is not None
    if not ok or not user.is_active or user.role != "admin":
        reason = "bad_credentials" if not ok else ("inactive" if not user.is_active else "not_admin")
        audit.record(
            "admin_ui.login_failed",
            actor_id=user.id if user else None,
            actor_email=email,
            details={"reason": reason},
        )
        db.session.commit()
        # One message for every failure: the form does not reveal which emails are admins.
        return render_template(
            "admin/login.html",
            error="Invalid credentials or not an administrator.",
            next=request.form.get("next", ""),
        ), 401
    session.clear()  # no fixation: a fresh session (and CSRF token) after login
    session.permanent = True
    session["admin_uid"] = user.id
    session["admin_sid"] = secrets.token_hex(16)
    session["admin_tv"] = user.token_version
    session["admin_exp"] = time.time() + float(current_app.config.get("ADMIN_SESSION_HOURS", 8.0)) * 3600
    csrf_token()
    audit.record("admin_ui.login", actor_id=user.id, actor_email=user.email)
    db.session.commit()
    return redirect(_safe_next(request.form.get("next")))


@route("/logout", methods=["POST"])
def logout():
    from backend.security import revocation

    sid, exp = session.get("admin_sid"), session.get("admin_exp")
    if sid and exp:
        revocation.revoke(_SID_PREFIX + sid, float(exp))  # until the cookie would have expired anyway
        db.session.commit()
    session.clear()
    return redirect(url_for("admin_ui.login"))


# --------------------------------------------------------------------------- pages


@route("/")
def index():
    return redirect(url_for("admin_ui.health"))


@route("/health")
def health():
    from backend.services import admin_ops

    return render_template(
        "admin/health.html",
        health=admin_ops.health(),
        cache=admin_ops.cache_stats(),
        feed=admin_ops.feed_status(),
        version=admin_ops.version_info(),
    )


@route("/cache/flush", methods=["POST"])
def cache_flush():
    from backend.services import admin_ops

    ns = request.form.get("namespace", "").strip() or None
    result = admin_ops.cache_flush(g.admin_user, ns)
    flash(f"Flushed {result['removed']} cache entr{'y' if result['removed'] == 1 else 'ies'}.", "ok")
    return redirect(url_for("admin_ui.health"))


@route("/users")
def users():
    from backend.services import users as users_service
    from backend.services.pagination import Page

    q = request.args.get("q", "").strip() or None
    page: Page = users_service.list_users(q, 100, _cursor())
    return render_template(
        "admin/users.html", users=page.items, q=q or "", next_cursor=_encode(page.next_cursor)
    )


@route("/users/<int:user_id>", methods=["POST"])
def user_update(user_id: int):
    from backend.services import users as users_service

    role = request.form.get("role") or None
    active = request.form.get("is_active")
    is_active = None if active is None else active == "1"
    return _run(
        lambda: users_service.update_user(g.admin_user, user_id, role, is_active),
        "User updated.",
        url_for("admin_ui.users"),
    )


@route("/audit")
def audit_log():
    from backend.services import audit
    from backend.services import users as users_service

    uid = request.args.get("user_id", type=int)
    action = request.args.get("action", "").strip() or None
    page = users_service.list_audit(uid, action, None, None, 100, _cursor())
    verify = audit.verify_chain() if request.args.get("verify") else None
    return render_template(
        "admin/audit.html",
        entries=page.items,
        user_id=uid or "",
        action=action or "",
        verify=verify,
        next_cursor=_encode(page.next_cursor),
    )


@route("/risk")
def risk():
    from backend.services import admin_ops

    try:
        kill = admin_ops.kill_switch_status()
        accounts = admin_ops.account_states(200, _cursor())
    except DomainError as exc:
        flash(exc.message, "error")
        kill, accounts = {"on": None}, None
    return render_template(
        "admin/risk.html",
        kill=kill,
        accounts=accounts.items if accounts else [],
        next_cursor=_encode(accounts.next_cursor) if accounts else None,
    )


@route("/risk/kill-switch", methods=["POST"])
def kill_switch():
    from backend.services import admin_ops

    on = request.form.get("on") == "1"
    if request.form.get("confirm", "").strip().upper() != ("HALT" if on else "RESUME"):
        flash(f"Type {'HALT' if on else 'RESUME'} to confirm.", "error")
        return redirect(url_for("admin_ui.risk"))
    reason = request.form.get("reason", "").strip()[:255]
    return _run(
        lambda: admin_ops.set_kill_switch(g.admin_user, on, reason),
        "Trading HALTED on every account." if on else "Trading resumed.",
        url_for("admin_ui.risk"),
    )


@route("/risk/accounts/<int:account_id>/reset", methods=["POST"])
def breaker_reset(account_id: int):
    from backend.services import admin_ops

    return _run(
        lambda: admin_ops.reset_breaker(g.admin_user, account_id),
        f"Circuit breaker of account {account_id} reset.",
        url_for("admin_ui.risk"),
    )


@route("/jobs")
def jobs():
    from backend.services import admin_ops

    return render_template("admin/jobs.html", jobs=admin_ops.jobs_status(50))


# --------------------------------------------------------------------------- helpers


def _run(action, ok_message: str, back: str):
    try:
        action()
        flash(ok_message, "ok")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    return redirect(back)


def _cursor() -> dict | None:
    from backend.api.common import decode_cursor
    from backend.errors import ApiError

    try:
        return decode_cursor(request.args.get("cursor"))
    except ApiError:
        return None


def _encode(cursor: dict | None) -> str | None:
    from backend.api.common import encode_cursor

    return encode_cursor(cursor) if cursor else None


def admin_required(func):
    """For extra pages other domains may add to this blueprint."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        if g.get("admin_user") is None:
            return redirect(url_for("admin_ui.login"))
        return func(*args, **kwargs)

    return wrapper


def init_app(app: Flask) -> None:
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config["SESSION_COOKIE_SAMESITE"] = app.config.get("SESSION_COOKIE_SAMESITE") or "Lax"
    # Flask's defaults already hold SESSION_COOKIE_NAME="session", so setdefault would never apply.
    if app.config.get("SESSION_COOKIE_NAME") in (None, "session"):
        app.config["SESSION_COOKIE_NAME"] = "tp_admin"
    if type(app.session_interface) is SecureCookieSessionInterface:
        app.session_interface = AdminSessionInterface()
    app.register_blueprint(bp)
