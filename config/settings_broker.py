"""Broker (Upstox) connectivity settings: OAuth app credentials, resilience knobs, token store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from config.env import ConfigError, env_bool, env_float, env_int, env_str

TOKEN_STORE_BACKENDS = ("auto", "redis", "database")


def settings(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    backend = env_str("TOKEN_STORE_BACKEND", "auto", env=env)
    if backend not in TOKEN_STORE_BACKENDS:
        raise ConfigError(
            f"TOKEN_STORE_BACKEND must be one of {', '.join(TOKEN_STORE_BACKENDS)}, got {backend!r}"
        )
    rate = env_float("UPSTOX_ORDER_RATE_PER_SECOND", 8.0, env=env)
    if not 0 < rate < 10:
        # Upstox allows 10 order requests per second; 429 UDAPI10005 carries no Retry-After.
        raise ConfigError(f"UPSTOX_ORDER_RATE_PER_SECOND must be in (0, 10), got {rate}")
    return {
        "TOKEN_STORE_BACKEND": backend,
        # OAuth app (from the Upstox developer console); never taken from a request
        "UPSTOX_API_BASE_URL": env_str(
            "UPSTOX_API_BASE_URL", env_str("UPSTOX_BASE_URL", "https://api.upstox.com", env=env), env=env
        ),
        "UPSTOX_CLIENT_ID": env_str("UPSTOX_CLIENT_ID", env=env),
        "UPSTOX_CLIENT_SECRET": env_str("UPSTOX_CLIENT_SECRET", env=env),
        "UPSTOX_REDIRECT_URI": env_str("UPSTOX_REDIRECT_URI", env=env),
        "UPSTOX_OAUTH_STATE_TTL_SECONDS": env_int("UPSTOX_OAUTH_STATE_TTL_SECONDS", 600, env=env),
        # exchange compliance: every order request names the algo
        "UPSTOX_ALGO_NAME": env_str("UPSTOX_ALGO_NAME", "tradeplatform", env=env),
        # resilience
        "UPSTOX_CONNECT_TIMEOUT_SECONDS": env_float("UPSTOX_CONNECT_TIMEOUT_SECONDS", 3.05, env=env),
        "UPSTOX_READ_TIMEOUT_SECONDS": env_float("UPSTOX_READ_TIMEOUT_SECONDS", 10.0, env=env),
        "UPSTOX_BREAKER_FAIL_MAX": env_int("UPSTOX_BREAKER_FAIL_MAX", 5, env=env),
        "UPSTOX_BREAKER_RESET_SECONDS": env_float("UPSTOX_BREAKER_RESET_SECONDS", 30.0, env=env),
        "UPSTOX_RETRY_ATTEMPTS": env_int("UPSTOX_RETRY_ATTEMPTS", 3, env=env),
        "UPSTOX_RETRY_WAIT_INITIAL": env_float("UPSTOX_RETRY_WAIT_INITIAL", 0.2, env=env),
        "UPSTOX_RETRY_WAIT_MAX": env_float("UPSTOX_RETRY_WAIT_MAX", 2.0, env=env),
        "UPSTOX_ORDER_RATE_PER_SECOND": rate,
        "UPSTOX_ORDER_BURST": env_int("UPSTOX_ORDER_BURST", 8, env=env),
        "BROKER_RECONCILE_ON_START": env_bool("BROKER_RECONCILE_ON_START", True, env=env),
    }
