"""One error envelope for every response: ``{"error": {code, message, details, request_id}}``.

Domain errors carry a stable ``code``; this module is the single place that maps
them (and werkzeug's HTTP errors) to status codes. See docs/errors.md.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from flask import Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException

from backend.domain import errors as de

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error raised by the HTTP layer itself (bad JSON, wrong content type, schema errors)."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None, headers=None
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


# Most specific class first wins: the lookup walks each exception's MRO.
DOMAIN_STATUS: dict[type[de.DomainError], int] = {
    de.ValidationFailed: 422,
    de.RiskRejected: 422,
    de.NotFound: 404,
    de.Conflict: 409,
    de.PermissionDenied: 403,
    de.AuthenticationFailed: 401,
    de.ServiceUnavailable: 503,
    de.RateLimited: 429,
    de.DomainError: 400,
}

HTTP_CODES: dict[int, str] = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    414: "URI_TOO_LONG",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
    431: "REQUEST_HEADERS_TOO_LARGE",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}

HTTP_MESSAGES: dict[int, str] = {
    404: "The requested resource was not found.",
    405: "The method is not allowed for the requested URL.",
    413: "The request body is larger than the allowed maximum.",
    429: "Too many requests; slow down and retry after the indicated delay.",
    500: "An internal error occurred. Quote the request_id when reporting it.",
}


def status_for(exc: de.DomainError) -> int:
    for klass in type(exc).__mro__:
        if klass in DOMAIN_STATUS:
            return DOMAIN_STATUS[klass]
    return 400


def envelope(status: int, code: str, message: str, details: dict | None = None, headers=None):
    body = {
        "error": {
            "code": code,
            "message": message,
            "details": details or {},
            "request_id": getattr(g, "request_id", None),
        }
    }
    response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _retry_after() -> int:
    from backend.extensions import limiter

    try:
        current = limiter.current_limit
        if current is not None:
            return max(1, math.ceil(current.reset_at - time.time()))
    except Exception:  # noqa: BLE001 - a missing window must not break the 429 itself
        log.debug("no current rate limit window", exc_info=True)
    return 1


def _handle_http(e: HTTPException):
    status = e.code or 500
    code = HTTP_CODES.get(status, f"HTTP_{status}")
    message = HTTP_MESSAGES.get(status) or e.description or code
    headers = {}
    if status == 429:
        from backend.observability.metrics import RATE_LIMITED

        RATE_LIMITED.labels(endpoint=request.endpoint or "unknown").inc()
        headers["Retry-After"] = str(_retry_after())
        details = {"limit": str(getattr(e, "description", ""))}
        return envelope(status, code, message, details, headers)
    if status == 405 and e.valid_methods:
        headers["Allow"] = ", ".join(sorted(e.valid_methods))
        return envelope(status, code, message, {"allowed": sorted(e.valid_methods)}, headers)
    return envelope(status, code, message, headers=headers)


def _handle_api_error(e: ApiError):
    return envelope(e.status, e.code, e.message, e.details, e.headers)


def _handle_domain_error(e: de.DomainError):
    status = status_for(e)
    headers = {}
    if status == 401:
        from backend.observability.metrics import AUTH_FAILURES

        AUTH_FAILURES.labels(reason=e.code).inc()
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
    if status == 429 and e.details.get("retry_after"):
        headers["Retry-After"] = str(int(e.details["retry_after"]))
    if status == 409:
        _check_conflict_declared(e)
    return envelope(status, e.code, e.message, e.details, headers)


def _check_conflict_declared(e: de.DomainError) -> None:
    """The spec documents 409 only on operations that declare it (backend/api/common.conflicts)."""
    from flask import current_app, request

    from backend.api.common import declares_conflict

    if not request.blueprint or not request.blueprint.startswith("api"):
        return
    if declares_conflict(current_app.view_functions.get(request.endpoint), request.method):
        return
    message = f"{request.method} {request.url_rule} answered 409 {e.code} without declaring it (@conflicts)"
    if current_app.config.get("TESTING"):
        raise AssertionError(message)
    log.error(message)


def _unavailable_dependency(e: Exception) -> str | None:
    """``redis`` / ``database`` when ``e`` means the service cannot be reached, else None."""
    import redis.exceptions
    import sqlalchemy.exc

    if isinstance(e, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return "redis"
    if isinstance(e, sqlalchemy.exc.DBAPIError) and (
        e.connection_invalidated
        or isinstance(e, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError)
    ):
        return "database"
    if isinstance(e, sqlalchemy.exc.TimeoutError):  # the pool had no connection to give
        return "database"
    return None


def _handle_unavailable(dependency: str):
    from flask import current_app

    from backend.extensions import db

    try:
        db.session.rollback()  # the connection may be dead: hand it back so the pool replaces it
    except Exception:  # noqa: BLE001 - the 503 below is the answer either way
        log.debug("rollback after a dependency failure failed", exc_info=True)
    log.warning("dependency unavailable", extra={"dependency": dependency, "path": request.path})
    retry = str(current_app.config.get("UNAVAILABLE_RETRY_AFTER_SECONDS", 5))
    return envelope(
        503,
        "DEPENDENCY_UNAVAILABLE",
        f"The {dependency} is unreachable; nothing was done. Retry after {retry} s.",
        {"dependency": dependency},
        {"Retry-After": retry},
    )


def _handle_unexpected(e: Exception):
    if isinstance(e, HTTPException):
        return _handle_http(e)
    dependency = _unavailable_dependency(e)
    if dependency is not None:  # fail closed, and say when to come back (never a 500)
        return _handle_unavailable(dependency)
    log.exception("unhandled exception", extra={"path": request.path})
    return envelope(500, "INTERNAL_ERROR", HTTP_MESSAGES[500])


def register_errorhandlers(app: Flask) -> None:
    """Install the envelope for every error, inside and outside the API blueprint."""
    app.register_error_handler(HTTPException, _handle_http)
    app.register_error_handler(ApiError, _handle_api_error)
    app.register_error_handler(de.DomainError, _handle_domain_error)
    app.register_error_handler(Exception, _handle_unexpected)
