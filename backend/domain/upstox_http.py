"""Upstox response handling shared by the market-data provider and the broker adapter.

Upstox answers ``{"status": "success", "data": ...}`` or ``{"status": "error", "errors": [...]}``;
this maps the second form (and HTTP failures) onto our domain errors in one place.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import requests

from backend.domain.errors import (
    BrokerTokenExpired,
    BrokerUnavailable,
    NotFound,
    RateLimited,
    ValidationFailed,
)

log = logging.getLogger(__name__)

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
