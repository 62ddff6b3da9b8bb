"""Auth: register, login, refresh, logout, me, password and API keys."""

from flask import current_app, g
from flask_restx import Namespace, Resource

from backend.api.auth.schemas import (
    ApiKeyCreatedSchema,
    ApiKeyCreateSchema,
    ApiKeySchema,
    LoginSchema,
    MessageSchema,
    PasswordChangeSchema,
    RefreshSchema,
    RegisterSchema,
    TokenPairSchema,
    UserSchema,
)
from backend.api.common import conflicts, no_body, public, responds, use_schema
from backend.api.security import current_user, require_auth, require_session
from backend.extensions import limiter
from backend.services import auth as auth_service

ns = Namespace("auth", description="Login, tokens and API keys", validate=False)


def _login_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN"]


def _login_email_key() -> str:
    """Rate-limit key per submitted email. Must never raise: it runs inside the limiter."""
    from flask import request
    from werkzeug.exceptions import HTTPException

    try:
        body = request.get_json(silent=True) or {}
    except HTTPException:  # e.g. 413: the body is refused later with its own envelope
        body = {}
    email = body.get("email") if isinstance(body, dict) else None
    return f"login-email:{str(email).strip().lower()}"


@ns.route("/register")
@public
class Register(Resource):
    decorators = [limiter.limit(_login_limit)]

    @use_schema(RegisterSchema)
    @responds(UserSchema, 201, "Created")
    @conflicts("EMAIL_TAKEN")
    def post(self, data):
        """Create a trader account (when OPEN_REGISTRATION is on)."""
        return auth_service.register(data["email"], data["password"]), 201


@ns.route("/login")
@public
class Login(Resource):
    # Per IP, and per email so one address cannot be sprayed from many IPs.
    decorators = [limiter.limit(_login_limit), limiter.limit(_login_limit, key_func=_login_email_key)]

    @use_schema(LoginSchema)
    @responds(TokenPairSchema, 200, "Access (15 min) and refresh (7 days) tokens")
    def post(self, data):
        """Exchange email and password for tokens."""
        return auth_service.login(data["email"], data["password"])


@ns.route("/refresh")
@public
class Refresh(Resource):
    decorators = [limiter.limit(_login_limit)]

    @use_schema(RefreshSchema)
    @responds(TokenPairSchema, 200, "A new pair; the old refresh token is spent")
    def post(self, data):
        """Rotate the refresh token. Reusing a spent one revokes the whole family."""
        return auth_service.refresh(data["refresh_token"])


@ns.route("/logout")
class Logout(Resource):
    @require_session
    @no_body
    @responds(MessageSchema, 200)
    def post(self):
        """Revoke this access token and its refresh-token family (API keys: DELETE /auth/api-keys/{id})."""
        auth_service.logout(current_user(), g.auth_claims)
        return {"message": "Logged out."}


@ns.route("/me")
class Me(Resource):
    @require_auth
    @responds(UserSchema)
    def get(self):
        """The authenticated user."""
        return current_user()


@ns.route("/me/password")
class MePassword(Resource):
    @require_session
    @use_schema(PasswordChangeSchema)
    @responds(MessageSchema)
    def patch(self, data):
        """Change password; every token, API key and live connection of this user stops working."""
        auth_service.change_password(current_user(), data["current_password"], data["new_password"])
        return {"message": "Password changed; log in again."}


@ns.route("/api-keys")
class ApiKeys(Resource):
    @require_auth
    @responds(ApiKeySchema, many=True)
    def get(self):
        """Your active API keys (hashes are never returned)."""
        return auth_service.list_api_keys(current_user())

    @require_session
    @use_schema(ApiKeyCreateSchema)
    @responds(ApiKeyCreatedSchema, 201, "Created; `key` is shown only in this response")
    def post(self, data):
        """Create an API key for bots (needs a session token, never another key); send it as X-API-Key."""
        key, raw = auth_service.create_api_key(current_user(), data["name"], data["scopes"], g.auth_scopes)
        key.key = raw
        return key, 201


@ns.route("/api-keys/<int:key_id>")
class ApiKeyItem(Resource):
    @require_session
    @responds(None, 204, "Revoked")
    def delete(self, key_id):
        """Revoke an API key."""
        auth_service.revoke_api_key(current_user(), key_id)
        return None, 204


# The dashboard's cookie-held refresh token (adds /auth/browser/* to this namespace).
from backend.api.auth import browser as _browser  # noqa: E402, F401
