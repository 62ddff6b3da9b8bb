"""Upstox response handling shared by the market-data provider and the broker adapter.

Upstox answers ``{"status": "success", "data": ...}`` or ``{"status": "error", "errors": [...]}``;
this maps the second form (and HTTP failures) onto our domain errors in one place.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import requests

from backend.domain.errors import (
    BrokerTokenExpired,
    BrokerUnavailable,
    NotFound,
    RateLimited,
    ValidationFailed,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

RELOGIN_HINT = "/api/v1/broker/upstox/authorize"
NOT_FOUND_CODES = {"UDAPI100010"}  # "Order not found"


def first_error(body: Any) -> tuple[str | None, str | None, str | None]:
    """``(errorCode, message, propertyPath)`` of the first error in an Upstox error body."""
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            e = errors[0]
            return (
                e.get("errorCode") or e.get("error_code"),
                e.get("message"),
                e.get("propertyPath") or e.get("property_path"),
            )
    return None, None, None


def handle_response(resp: requests.Response, not_found_code: str = "NOT_FOUND") -> Any:
    """Return ``data`` of a success body, or raise the matching domain error."""
    status = resp.status_code
    try:
        body = resp.json()
    except ValueError:
        body = None
    if 200 <= status < 300:
        if not isinstance(body, dict) or body.get("status") != "success":
            raise BrokerUnavailable("Upstox returned an unexpected response body.")
        return body.get("data")
    code, message, prop = first_error(body)
    details: dict[str, Any] = {"upstox_error_code": code, "http_status": status}
    if prop:
        details["field"] = prop
    log.warning("upstox error %s %s", status, code)
    if status == 401:
        details["relogin"] = RELOGIN_HINT
        raise BrokerTokenExpired(
            f"Upstox session expired or revoked ({message or 'invalid token'}); log in to Upstox again.",
            details=details,
        )
    if status == 429:
        retry = resp.headers.get("Retry-After")
        # UDAPI10005 carries no Retry-After: one second is the window of Upstox's per-second limit
        details["retry_after"] = int(retry) if retry and retry.isdigit() else 1
        raise RateLimited(f"Upstox rate limit exceeded: {message or 'too many requests'}", details=details)
    if status >= 500:
        raise BrokerUnavailable(f"Upstox error {status}: {message or 'server error'}", details=details)
    if status == 404 or code in NOT_FOUND_CODES:
        raise NotFound(f"Upstox: {message or 'not found'}", details=details, code=not_found_code)
    raise ValidationFailed(
        f"Upstox rejected the request: {message or status}", details=details, code="BROKER_REJECTED"
    )


def dec(value: Any) -> Decimal:
    """Upstox sends floats such as 52.04999923706055: go through a rounded str, never binary."""
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, float):
        return Decimal(str(round(value, 4))).normalize()
    return Decimal(str(value))


# --------------------------------------------------------------------------- call observation

# Upstox paths with a variable segment, as their documented templates (the instrument key and the
# dates sit in the path; order ids and instrument keys elsewhere go in the query string).
_TEMPLATES = (
    (
        re.compile(r"^/v3/historical-candle/intraday/[^/]+/[^/]+/[^/]+$"),
        "/v3/historical-candle/intraday/{instrument_key}/{unit}/{interval}",
    ),
    (
        re.compile(r"^/v3/historical-candle/[^/]+/[^/]+/[^/]+/[^/]+/[^/]+$"),
        "/v3/historical-candle/{instrument_key}/{unit}/{interval}/{to_date}/{from_date}",
    ),
)
# e.g. /v2/order/retrieve-all: a version, then words only (no keys, ids or dates)
_STATIC = re.compile(r"^/v\d(/[a-z][a-z-]*){1,4}$")

CallObserver = Callable[[str, str, str, float, BaseException | None], None]
_observer: list[CallObserver] = []


def endpoint_template(path: str) -> str:
    """The route template of an Upstox path (a bounded metrics label, never the raw URL)."""
    path = path.split("?", 1)[0]
    for pattern, template in _TEMPLATES:
        if pattern.match(path):
            return template
    return path if _STATIC.match(path) else "other"


def set_call_observer(observer: CallObserver | None) -> None:
    """Receive ``(upstream, method, path, seconds, error or None)`` after every Upstox HTTP call
    (the app's metrics); domain code stays free of the metrics library."""
    _observer[:] = [observer] if observer is not None else []


def observed(upstream: str, method: str, path: str, call: Callable[[], T]) -> Callable[[], T]:
    """``call`` (one HTTP attempt: request and response handling) reporting to the observer."""

    def run() -> T:
        start = time.perf_counter()
        error: BaseException | None = None
        try:
            return call()
        except BaseException as exc:
            error = exc
            raise
        finally:
            for fn in _observer:
                try:
                    fn(upstream, method, path, time.perf_counter() - start, error)
                except Exception:  # noqa: BLE001 - metrics never break a broker call
                    log.warning("call observer failed", exc_info=True)

    return run
