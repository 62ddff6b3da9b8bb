"""Per-request plumbing: request id, authentication, access log, metrics, security headers."""

from __future__ import annotations

import logging
import re
import secrets
import time
import uuid
from typing import Any

from flask import Flask, Request, Response, g, request
from werkzeug.exceptions import BadRequest
from werkzeug.middleware.proxy_fix import ProxyFix

from backend.api.security import enforce_authentication
from backend.observability.metrics import LATENCY, REQUESTS

access_log = logging.getLogger("backend.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def _begin() -> None:
    g.started = time.perf_counter()
    incoming = request.headers.get("X-Request-ID", "")
    # Accept a caller's id only if it is safe to echo into logs and headers.
    g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    g.csp_nonce = secrets.token_urlsafe(16)


def _csp(nonce: str) -> str:
    return (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{nonce}'; "
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; "
        "font-src 'self' data:; "
        "connect-src 'self' ws: wss:; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )


def _finish(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("request_id", "")
    response.headers.setdefault("Content-Security-Policy", _csp(g.get("csp_nonce", "")))
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")

    duration = time.perf_counter() - g.get("started", time.perf_counter())
    endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
    status = str(response.status_code)
    REQUESTS.labels(request.method, endpoint, status).inc()
    LATENCY.labels(request.method, endpoint, status).observe(duration)
    if access_log.isEnabledFor(logging.INFO):
        access_log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(duration * 1000, 2),
                # set at authentication: the user row itself may be expired by the request's commit
                "user_id": g.get("user_id"),
                "request_id": g.get("request_id"),
            },
        )
    return response


MAX_JSON_DEPTH = 64


class JsonGuardedRequest(Request):
    """Refuse JSON that Python parses but nothing downstream can hold: too deep (a RecursionError,
    i.e. a 500) or with lone UTF-16 surrogates (``"\\ud800"``, which PostgreSQL cannot store)."""

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        try:
            data = super().get_json(force=force, silent=silent, cache=cache)
        except RecursionError:
            if silent:
                return None
            raise BadRequest(f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels.") from None
        problem = _json_problem(data)
        if problem is not None:
            if silent:
                return None
            raise BadRequest(problem)
        return data


def _json_problem(value: Any, depth: int = 0) -> str | None:
    if depth > MAX_JSON_DEPTH:
        return f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels."
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "The JSON body holds a lone UTF-16 surrogate (an invalid character)."
        return None
    if isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, list):
        items = value
    else:
        return None
    for item in items:
        problem = _json_problem(item, depth + 1)
        if problem is not None:
            return problem
    return None


def install(app: Flask) -> None:
    app.request_class = JsonGuardedRequest
    if app.config["TRUSTED_PROXY_COUNT"] > 0:
        n = app.config["TRUSTED_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)  # type: ignore[method-assign]
    app.before_request(_begin)
    app.before_request(enforce_authentication)
    app.after_request(_finish)
    app.jinja_env.globals["csp_nonce"] = lambda: g.get("csp_nonce", "")
