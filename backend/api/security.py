"""Request authentication (JWT bearer or X-API-Key) and the role/scope decorators.

Authentication is enforced for every endpoint by ``enforce_authentication`` unless the
endpoint is explicitly public, so a forgotten decorator fails closed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import current_app, g, request

from backend.domain.errors import AuthenticationFailed, PermissionDenied
from backend.services import auth as auth_service

# Endpoints outside restx that need no credentials.
PUBLIC_ENDPOINTS = {"static", "restx_doc.static", "api.doc", "api.specs", "api.root"}
# Public endpoints whose Authorization header is not ours to interpret (/metrics has its own token).
SKIP_AUTH = {"ops.metrics", "static", "restx_doc.static"}
ROLE_RANK = {"viewer": 0, "trader": 1, "admin": 2}
# Methods that change state. Each needs the ``trade`` scope unless its handler declares another
# (``require_scope("read")`` on a POST that only computes, ``require_role("admin")``), so a route
# that checks only the user's role can never be driven by a read-only API key.
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


def _is_public(endpoint: str | None) -> bool:
    if endpoint is None or endpoint in PUBLIC_ENDPOINTS:
        return True
    view = current_app.view_functions.get(endpoint)
    if view is None:
        return True  # 404/405 paths are answered by the router, with nothing to protect
    view_class = getattr(view, "view_class", None)
    return bool(getattr(view, "public", False) or getattr(view_class, "public", False))


def authenticate_request() -> None:
    """Resolve credentials into ``g.current_user`` / ``g.auth_scopes`` if any were sent."""
    g.current_user = None
    g.auth_scopes = set()
    g.auth_claims = None
    g.api_key = None
    header = request.headers.get("Authorization", "")
    api_key = request.headers.get("X-API-Key")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed("Authorization header must be 'Bearer <token>'.", code="TOKEN_INVALID")
        user, claims = auth_service.authenticate_access(token.strip())
        g.auth_claims = claims
    elif api_key:
        user, key = auth_service.authenticate_api_key(api_key.strip())
        g.api_key = key
    else:
        return
    g.current_user = user
    # read now, while loaded: after a commit or rollback ``user.id`` would cost a reload
    g.user_id = user.id
    g.auth_scopes = auth_service.scopes_for(user, g.api_key)


def enforce_authentication() -> None:
    """``before_request`` hook: authenticate, and refuse anonymous access to non-public endpoints."""
    if request.endpoint in SKIP_AUTH:
        g.current_user, g.auth_scopes, g.auth_claims, g.api_key = None, set(), None, None
        return
    public = _is_public(request.endpoint)
    if public and not request.headers.get("Authorization") and not request.headers.get("X-API-Key"):
        g.current_user, g.auth_scopes, g.auth_claims, g.api_key = None, set(), None, None
        return
    authenticate_request()
    if g.current_user is None and not public:
        raise AuthenticationFailed(
            "Authentication required: send a Bearer token or X-API-Key.", code="UNAUTHORIZED"
        )
    if not public and request.method in STATE_CHANGING:
        _enforce_write_scope()


def _handler_attr(name: str, default):
    view = current_app.view_functions.get(request.endpoint)
    handler = getattr(getattr(view, "view_class", None), request.method.lower(), None) or view
    return getattr(handler, name, default)


def _enforce_write_scope() -> None:
    """A state-changing call needs its handler's declared scope, ``trade`` when it declares none."""
    scope = _handler_attr("required_scope", "trade")
    if scope not in g.auth_scopes:
        raise PermissionDenied(f"This action needs the '{scope}' scope.", code="INSUFFICIENT_SCOPE")


def current_user():
    user = g.get("current_user")
    if user is None:
        raise AuthenticationFailed("Authentication required.", code="UNAUTHORIZED")
    return user


def require_auth(func: Callable) -> Callable:
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        current_user()
        return func(*args, **kwargs)

    return wrapper


def require_role(role: str) -> Callable:
    """Allow ``role`` or any higher role (admin > trader > viewer).

    ``admin`` also needs the ``admin`` scope, which only a session token carries: an admin's API
    key cannot administer. State-changing calls are additionally scope-checked centrally.
    """

    def decorator(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            user = current_user()
            if ROLE_RANK.get(user.role, -1) < ROLE_RANK[role]:
                raise PermissionDenied(f"This action needs the '{role}' role.")
            if role == "admin" and "admin" not in g.auth_scopes:
                raise PermissionDenied("This action needs the 'admin' scope.", code="INSUFFICIENT_SCOPE")
            return func(*args, **kwargs)

        if role == "admin":
            wrapper.required_scope = "admin"
        return wrapper

    return decorator


def require_scope(scope: str) -> Callable:
    def decorator(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            current_user()
            if scope not in g.auth_scopes:
                raise PermissionDenied(f"This action needs the '{scope}' scope.", code="INSUFFICIENT_SCOPE")
            return func(*args, **kwargs)

        wrapper.required_scope = scope
        return wrapper

    return decorator


def require_session(func: Callable) -> Callable:
    """Only a session (JWT) may manage credentials: an API key cannot mint keys or change passwords."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        current_user()
        if g.get("api_key") is not None or g.get("auth_claims") is None:
            raise PermissionDenied(
                "Managing credentials needs a session token (log in); API keys cannot do it.",
                code="SESSION_REQUIRED",
            )
        return func(*args, **kwargs)

    wrapper.required_scope = "read"  # the session check above is the stronger rule
    return wrapper
