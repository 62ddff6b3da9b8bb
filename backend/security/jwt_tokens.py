"""JWT issue and verification (pyjwt) with a pinned algorithm and full claim validation."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from backend.domain.errors import AuthenticationFailed

REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "jti", "type", "sub"]


@dataclass(frozen=True)
class JwtSettings:
    secret: str
    algorithm: str
    issuer: str
    audience: str
    access_ttl: int
    refresh_ttl: int
    leeway: int

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> JwtSettings:
        return cls(
            secret=config["JWT_SECRET_KEY"],
            algorithm=config["JWT_ALGORITHM"],
            issuer=config["JWT_ISSUER"],
            audience=config["JWT_AUDIENCE"],
            access_ttl=config["JWT_ACCESS_TTL_SECONDS"],
            refresh_ttl=config["JWT_REFRESH_TTL_SECONDS"],
            leeway=config["JWT_LEEWAY_SECONDS"],
        )


def issue(
    settings: JwtSettings, *, user_id: int, token_type: str, extra: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """Return ``(token, claims)`` for an ``access`` or ``refresh`` token."""
    now = int(time.time())
    ttl = settings.access_ttl if token_type == "access" else settings.refresh_ttl
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "iss": settings.issuer,
        "aud": settings.audience,
        "jti": uuid.uuid4().hex,
        "type": token_type,
    }
    claims.update(extra or {})
    return jwt.encode(claims, settings.secret, algorithm=settings.algorithm), claims


def decode(settings: JwtSettings, token: str, expected_type: str) -> dict[str, Any]:
    """Verify signature and every registered claim; raise ``AuthenticationFailed`` with a reason."""
    try:
        claims = jwt.decode(
            token,
            settings.secret,
            algorithms=[settings.algorithm],  # pinned: the header's "alg" is never trusted
            audience=settings.audience,
            issuer=settings.issuer,
            leeway=settings.leeway,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthenticationFailed("Token has expired.", code="TOKEN_EXPIRED") from exc
    except jwt.InvalidAudienceError as exc:
        raise AuthenticationFailed("Token audience is not accepted.", code="TOKEN_INVALID") from exc
    except jwt.InvalidIssuerError as exc:
        raise AuthenticationFailed("Token issuer is not accepted.", code="TOKEN_INVALID") from exc
    except jwt.InvalidAlgorithmError as exc:
        raise AuthenticationFailed("Token algorithm is not accepted.", code="TOKEN_INVALID") from exc
    except jwt.PyJWTError as exc:
        raise AuthenticationFailed("Token is invalid.", code="TOKEN_INVALID") from exc
    if claims.get("type") != expected_type:
        raise AuthenticationFailed(f"Expected a {expected_type} token.", code="TOKEN_INVALID")
    return claims
