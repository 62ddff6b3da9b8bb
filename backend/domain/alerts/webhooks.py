"""Webhook signing, verification, SSRF-safe URL validation and synchronous delivery with retries.

Signature header (Stripe style)::

    X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}." + body)>

The background dispatch (thread pool, persistence of attempts) belongs to the service layer;
``deliver`` is synchronous and takes its HTTP session, sleep and clock as arguments.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from backend.domain.errors import ValidationFailed

try:
    import tenacity as _tenacity
except ImportError:  # pragma: no cover - fall back to the plain loop in deliver()
    _tenacity = None

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Signature"
DEFAULT_TOLERANCE_S = 300
USER_AGENT = "tradeplatform-webhooks/1"
#: Status codes worth retrying: the receiver may succeed later. Other 4xx are permanent.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})

Resolver = Callable[..., list]


# --------------------------------------------------------------------------- signing


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def _mac(secret: str | bytes, body: bytes, ts: int) -> str:
    return hmac.new(_key(secret), str(ts).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: bytes, ts: int | float) -> str:
    """Value of the ``X-Signature`` header for ``body`` sent at unix time ``ts``."""
    t = int(ts)
    return f"t={t},v1={_mac(secret, body, t)}"


def verify(
    secret: str | bytes,
    body: bytes,
    header: str | None,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """True if ``header`` is a valid signature of ``body`` made within ``tolerance_s`` of ``now``.

    Several ``v1=`` entries are accepted (secret rotation); comparison is constant-time.
    """
    if not header:
        return False
    ts: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        k, sep, v = part.strip().partition("=")
        if not sep:
            continue
        if k == "t":
            try:
                ts = int(v)
            except ValueError:
                return False
        elif k == "v1":
            candidates.append(v)
    if ts is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        return False  # replay of an old (or far-future) message
    expected = _mac(secret, body, ts)
    ok = False
    for cand in candidates:
        # No early exit: every candidate is compared so timing does not reveal which one matched.
        ok |= hmac.compare_digest(expected, cand)
    return ok


# --------------------------------------------------------------------------- SSRF policy


def _is_blocked(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def validate_url(url: str, allow_private: bool = False, resolver: Resolver = socket.getaddrinfo) -> list[str]:
    """Check a webhook URL; return the resolved IP addresses. Raises ``ValidationFailed``.

    Only http/https with a host; every address the host resolves to must be public unless
    ``allow_private`` (tests, on-prem receivers).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValidationFailed("webhook URL is malformed", {"field": "url"}) from exc
    if parts.scheme not in ("http", "https"):
        raise ValidationFailed("webhook URL must use http or https", {"field": "url", "scheme": parts.scheme})
    host = parts.hostname
    if not host:
        raise ValidationFailed("webhook URL has no host", {"field": "url"})
    if parts.username or parts.password:
        raise ValidationFailed("webhook URL must not embed credentials", {"field": "url"})
    try:
        infos = resolver(host, port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise ValidationFailed("webhook host does not resolve", {"field": "url", "host": host}) from exc
    addresses = sorted({info[4][0] for info in infos})
    if not addresses:
        raise ValidationFailed("webhook host does not resolve", {"field": "url", "host": host})
    if not allow_private:
        for addr in addresses:
            ip = ipaddress.ip_address(addr.split("%", 1)[0])  # strip an IPv6 zone id
            if _is_blocked(ip):
                raise ValidationFailed(
                    "webhook URL resolves to a non-public address",
                    {"field": "url", "host": host, "address": addr},
                )
    return addresses


# --------------------------------------------------------------------------- delivery


@dataclass(frozen=True, slots=True)
class Attempt:
    attempt: int  # 1-based
    status_code: int | None
    error: str | None
    duration_ms: float
    ok: bool
    retryable: bool
    at: float  # unix time the attempt started


def _json_default(o: Any) -> Any:
    if isinstance(o, Decimal):
        return str(o)
    if isinstance(o, datetime | date):
        return o.isoformat()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def encode_body(payload: Mapping[str, Any]) -> bytes:
    """Canonical JSON body (sorted keys, compact) that is signed byte-for-byte."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=_json_default).encode()


def backoff_delays(max_attempts: int, backoff_base: float, rng: Callable[[], float]) -> list[float]:
    """Sleep before attempt n+1: ``base * 2**(n-1)`` plus jitter in ``[0, that)``."""
    return [backoff_base * 2**n * (1 + rng()) for n in range(max_attempts - 1)]


def deliver(
    url: str,
    payload: Mapping[str, Any],
    secret: str | bytes,
    session: Any,
    max_attempts: int = 5,
    backoff_base: float = 1.0,
    *,
    timeout: float = 10.0,
    allow_private: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    rng: Callable[[], float] | None = None,
    resolver: Resolver = socket.getaddrinfo,
) -> list[Attempt]:
    """POST ``payload`` to ``url`` until a 2xx, a permanent failure or ``max_attempts``.

    ``session`` is a ``requests.Session``-like object (``post(url, data, headers, timeout,
    allow_redirects)``). Each attempt is re-signed with a fresh timestamp. Redirects are not
    followed (a redirect could point at an internal address). Raises ``ValidationFailed`` if the
    URL is refused by the SSRF policy; no request is made then.
    """
    if max_attempts < 1:
        raise ValidationFailed("max_attempts must be >= 1", {"field": "max_attempts"})
    validate_url(url, allow_private=allow_private, resolver=resolver)
    body = encode_body(payload)
    if rng is None:
        import random

        rng = random.random
    delays = backoff_delays(max_attempts, backoff_base, rng)
    attempts: list[Attempt] = []

    def attempt_once() -> Attempt:
        n = len(attempts) + 1
        started = clock()
        t0 = time.perf_counter()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(secret, body, started),
        }
        status: int | None = None
        error: str | None = None
        try:
            resp = session.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
            status = int(resp.status_code)
        except Exception as exc:  # any transport error is recorded and retried
            error = f"{type(exc).__name__}: {exc}"
        duration = (time.perf_counter() - t0) * 1000
        ok = status is not None and 200 <= status < 300
        retryable = not ok and (status is None or status in RETRYABLE_STATUS)
        if status is not None and not ok:
            error = f"HTTP {status}"
        result = Attempt(n, status, error, round(duration, 3), ok, retryable, started)
        attempts.append(result)
        if retryable and n < max_attempts:
            log.info("webhook attempt %d to %s failed (%s); retrying", n, url, error)
        return result

    if _tenacity is not None:
        retrying = _tenacity.Retrying(
            stop=_tenacity.stop_after_attempt(max_attempts),
            # tenacity computes the wait before checking stop, so the last attempt asks too.
            wait=lambda rs: delays[rs.attempt_number - 1] if rs.attempt_number <= len(delays) else 0.0,
            retry=_tenacity.retry_if_result(lambda a: a.retryable),
            sleep=sleep,
            retry_error_callback=lambda rs: rs.outcome.result(),
        )
        retrying(attempt_once)
    else:  # pragma: no cover - tenacity is optional
        while not attempt_once().ok and attempts[-1].retryable and len(attempts) < max_attempts:
            sleep(delays[len(attempts) - 1])
    return attempts
