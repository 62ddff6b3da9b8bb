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
    protection = env_str("UPSTOX_MARKET_PROTECTION", "-1", env=env).strip().lower()
    if protection in ("", "off", "none"):
        market_protection = None
    else:
        try:
            market_protection = float(protection)
        except ValueError:
            raise ConfigError(
                f"UPSTOX_MARKET_PROTECTION must be -1, 0-25 or off, got {protection!r}"
            ) from None
        # Upstox "Market Price Protection": -1 automatic, 0 none, 0-25 a percentage
        if market_protection != -1 and not 0 <= market_protection <= 25:
            raise ConfigError(f"UPSTOX_MARKET_PROTECTION must be -1, 0-25 or off, got {protection!r}")
    # Upstox "Portfolio Stream Feed Authorize": update_types order, gtt_order, position, holding
    update_types = [
        t.strip()
        for t in env_str("UPSTOX_PORTFOLIO_UPDATE_TYPES", "order,position,holding", env=env).split(",")
        if t.strip()
    ]
    unknown = [t for t in update_types if t not in ("order", "gtt_order", "position", "holding")]
    if unknown or "order" not in update_types:
        raise ConfigError(
            "UPSTOX_PORTFOLIO_UPDATE_TYPES must list order and any of gtt_order, position, holding; "
            f"got {','.join(update_types)!r}"
        )
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
        # order writes go to the host the official SDK uses (upstox-python Configuration.order_host)
        "UPSTOX_ORDER_BASE_URL": env_str("UPSTOX_ORDER_BASE_URL", "https://api-hft.upstox.com", env=env),
        "UPSTOX_MARKET_PROTECTION": market_protection,
        # shared per-user order windows (10/s, 500/min, 2,000/30 min) and 429 back-off
        "UPSTOX_ORDER_MAX_WAIT_SECONDS": env_float("UPSTOX_ORDER_MAX_WAIT_SECONDS", 2.0, env=env),
        "UPSTOX_RATE_LIMIT_RETRIES": env_int("UPSTOX_RATE_LIMIT_RETRIES", 3, env=env),
        "UPSTOX_RATE_LIMIT_BACKOFF_SECONDS": env_float("UPSTOX_RATE_LIMIT_BACKOFF_SECONDS", 1.0, env=env),
        # exactly-once live orders (backend/services/trading/orders/live.py)
        "UPSTOX_ORDER_LOOKUP_GRACE_SECONDS": env_float("UPSTOX_ORDER_LOOKUP_GRACE_SECONDS", 10.0, env=env),
        "UPSTOX_ORDER_LOOKUP_INTERVAL_SECONDS": env_float(
            "UPSTOX_ORDER_LOOKUP_INTERVAL_SECONDS", 1.0, env=env
        ),
        "UPSTOX_SUBMITTING_STALE_SECONDS": env_float("UPSTOX_SUBMITTING_STALE_SECONDS", 60.0, env=env),
        "UPSTOX_UNKNOWN_SETTLE_AFTER_SECONDS": env_float(
            "UPSTOX_UNKNOWN_SETTLE_AFTER_SECONDS", 120.0, env=env
        ),
        "UPSTOX_RESOLVER_INTERVAL_SECONDS": env_float("UPSTOX_RESOLVER_INTERVAL_SECONDS", 15.0, env=env),
        # portfolio stream feed (backend/services/portfolio_feed.py)
        "UPSTOX_PORTFOLIO_FEED_ENABLED": env_bool("UPSTOX_PORTFOLIO_FEED_ENABLED", True, env=env),
        "UPSTOX_PORTFOLIO_UPDATE_TYPES": update_types,
        "UPSTOX_PORTFOLIO_FEED_SILENCE_SECONDS": env_float(
            "UPSTOX_PORTFOLIO_FEED_SILENCE_SECONDS", 60.0, env=env
        ),
        "UPSTOX_PORTFOLIO_FEED_PING_SECONDS": env_float("UPSTOX_PORTFOLIO_FEED_PING_SECONDS", 15.0, env=env),
        "UPSTOX_PORTFOLIO_FEED_TOKEN_CHECK_SECONDS": env_float(
            "UPSTOX_PORTFOLIO_FEED_TOKEN_CHECK_SECONDS", 5.0, env=env
        ),
        "UPSTOX_PORTFOLIO_FEED_AUTH_RETRY_SECONDS": env_float(
            "UPSTOX_PORTFOLIO_FEED_AUTH_RETRY_SECONDS", 60.0, env=env
        ),
        "UPSTOX_PORTFOLIO_FEED_BACKOFF_INITIAL": env_float(
            "UPSTOX_PORTFOLIO_FEED_BACKOFF_INITIAL", 1.0, env=env
        ),
        "UPSTOX_PORTFOLIO_FEED_BACKOFF_MAX": env_float("UPSTOX_PORTFOLIO_FEED_BACKOFF_MAX", 60.0, env=env),
        "UPSTOX_PORTFOLIO_FEED_SYNC_SECONDS": env_float("UPSTOX_PORTFOLIO_FEED_SYNC_SECONDS", 30.0, env=env),
    }
