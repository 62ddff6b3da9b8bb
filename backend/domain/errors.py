"""Domain errors.

Services and domain code raise these; the API layer maps each ``code`` to an
HTTP status in one place (``backend/errors.py``). Nothing here knows about HTTP.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base class. ``code`` is the stable machine-readable error code."""

    code = "DOMAIN_ERROR"

    def __init__(self, message: str, details: dict[str, Any] | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code:
            self.code = code


class ValidationFailed(DomainError):
    """Input is well-formed but violates a rule (maps to 422)."""

    code = "VALIDATION_ERROR"


class NotFound(DomainError):
    """The object does not exist or is not visible to the caller (404)."""

    code = "NOT_FOUND"


class Conflict(DomainError):
    """State conflict, e.g. duplicate or idempotency mismatch (409)."""

    code = "CONFLICT"


class PermissionDenied(DomainError):
    """Authenticated but not allowed (403)."""

    code = "FORBIDDEN"


class AuthenticationFailed(DomainError):
    """Missing, invalid, expired or revoked credentials (401)."""

    code = "UNAUTHORIZED"


class RiskRejected(DomainError):
    """Pre-trade risk checks failed; ``details['checks']`` lists every failure (422)."""

    code = "RISK_REJECTED"


class ServiceUnavailable(DomainError):
    """A dependency (broker, provider, cache) is down (503)."""

    code = "SERVICE_UNAVAILABLE"


class BrokerUnavailable(ServiceUnavailable):
    code = "BROKER_UNAVAILABLE"


class BrokerTokenExpired(AuthenticationFailed):
    code = "BROKER_TOKEN_EXPIRED"


class RateLimited(DomainError):
    """Upstream throttling (429). ``details`` may carry ``retry_after`` seconds."""

    code = "RATE_LIMITED"
