"""Browser sessions for the dashboard: the refresh token in an HttpOnly cookie, CSRF-protected.

The dashboard keeps its access token in memory only. Its refresh token is never readable by
JavaScript: it lives in an ``HttpOnly; SameSite=Strict`` cookie scoped to ``/api/v1/auth/browser``,
so only these endpoints ever receive it. A cookie is sent by the browser automatically, so the
endpoints that read it also require ``X-CSRF-Token`` to equal HMAC(SECRET_KEY, refresh token),
which the login/refresh responses return and a readable ``tp_csrf`` cookie repeats (so a reload can
refresh quietly). A cross-site page can read neither, and SameSite=Strict already keeps the cookie
off cross-site requests; a present ``Origin`` header must also be our own (defence in depth).

Rotation, reuse detection and revocation are the existing ``/auth/refresh`` logic
(``backend.services.auth``); this module only moves the token between a cookie and the service.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from flask import after_this_request, current_app, g, request
from flask_restx import Resource
from marshmallow import Schema, fields

from backend.api.auth.routes import _login_email_key, _login_limit, ns
from backend.api.auth.schemas import LoginSchema, MessageSchema
from backend.api.common import no_body, public, responds, use_schema
from backend.api.security import current_user, require_auth
from backend.domain.errors import AuthenticationFailed, PermissionDenied
from backend.extensions import limiter
from backend.services import auth as auth_service

REFRESH_COOKIE = "tp_refresh"
CSRF_COOKIE = "tp_csrf"
CSRF_HEADER = "X-CSRF-Token"
COOKIE_PATH = "/api/v1/auth/browser"


class BrowserTokenSchema(Schema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(required=True, metadata={"description": "Access token lifetime, seconds"})
    csrf_token = fields.String(required=True, metadata={"description": f"Send as {CSRF_HEADER}"})


def csrf_for(refresh_token: str) -> str:
    """The CSRF token bound to one refresh token (changes with every rotation)."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, refresh_token.encode(), hashlib.sha256).hexdigest()


def _secure() -> bool:
    return bool(current_app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


def _same_origin() -> None:
    origin = request.headers.get("Origin")
    if origin is None:
        return
    parts = urlsplit(origin)
    if f"{parts.scheme}://{parts.netloc}" != f"{request.scheme}://{request.host}":
        raise PermissionDenied("Cross-origin request refused.", code="CSRF_FAILED")


def _check_csrf(refresh_token: str) -> None:
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent or not hmac.compare_digest(sent, csrf_for(refresh_token)):
        raise PermissionDenied(f"Missing or wrong {CSRF_HEADER} header.", code="CSRF_FAILED")


def _set_cookies(refresh_token: str, csrf: str):
    def apply(resp):
        max_age = current_app.config["JWT_REFRESH_TTL_SECONDS"]
        secure = _secure()
        resp.set_cookie(
            REFRESH_COOKIE,
            refresh_token,
            max_age=max_age,
            path=COOKIE_PATH,
            secure=secure,
            httponly=True,
            samesite="Strict",
        )
        # Readable on purpose (double submit): worthless without the HttpOnly cookie it is bound to.
        resp.set_cookie(CSRF_COOKIE, csrf, max_age=max_age, path="/", secure=secure, samesite="Strict")
        resp.headers["Cache-Control"] = "no-store"
        return resp

    return apply


def _session(pair: auth_service.TokenPair) -> dict:
    csrf = csrf_for(pair.refresh_token)
    after_this_request(_set_cookies(pair.refresh_token, csrf))
    return {
        "access_token": pair.access_token,
        "token_type": pair.token_type,
        "expires_in": pair.expires_in,
        "csrf_token": csrf,
    }


def _clear(resp):
    secure = _secure()
    resp.delete_cookie(REFRESH_COOKIE, path=COOKIE_PATH, secure=secure, httponly=True, samesite="Strict")
    resp.delete_cookie(CSRF_COOKIE, path="/", secure=secure, samesite="Strict")
    return resp


@ns.route("/browser/login")
@public
class BrowserLogin(Resource):
    decorators = [limiter.limit(_login_limit), limiter.limit(_login_limit, key_func=_login_email_key)]

    @use_schema(LoginSchema)
    @responds(BrowserTokenSchema, 200, "Access token; the refresh token is set as an HttpOnly cookie")
    def post(self, data):
        """Log in for the dashboard: access token in the body, refresh token in an HttpOnly cookie."""
        _same_origin()
        return _session(auth_service.login(data["email"], data["password"]))


@ns.route("/browser/refresh")
@public
class BrowserRefresh(Resource):
    decorators = [limiter.limit(_login_limit)]

    @no_body
    @responds(BrowserTokenSchema, 200, "A new access token; the cookie's refresh token is rotated")
    def post(self):
        """Rotate the cookie's refresh token (needs X-CSRF-Token); a reused one revokes the family."""
        _same_origin()
        token = request.cookies.get(REFRESH_COOKIE)
        if not token:
            raise AuthenticationFailed("Not signed in (no refresh cookie).", code="REFRESH_COOKIE_MISSING")
        _check_csrf(token)
        return _session(auth_service.refresh(token))


@ns.route("/browser/logout")
class BrowserLogout(Resource):
    @require_auth
    @no_body
    @responds(MessageSchema, 200, "Logged out; cookies cleared")
    def post(self):
        """Revoke the access token and its refresh family, and clear the session cookies."""
        _same_origin()
        token = request.cookies.get(REFRESH_COOKIE)
        if token:
            _check_csrf(token)
        if g.auth_claims is not None:
            auth_service.logout(current_user(), g.auth_claims)
        after_this_request(_clear)
        return {"message": "Logged out."}
