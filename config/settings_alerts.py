"""Alerts, webhooks, admin pages and tracing settings (merged into ``app.config`` by ``load_config``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from config.env import env_bool, env_float, env_int, env_str


def settings(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        # alerts
        "ALERTS_MAX_RULES_PER_USER": env_int("ALERTS_MAX_RULES_PER_USER", 200, env=env),
        "ALERTS_ENABLED": env_bool("ALERTS_ENABLED", True, env=env),
        "ALERTS_CHECKPOINT_SECONDS": env_float("ALERTS_CHECKPOINT_SECONDS", 5.0, env=env),
        "ALERTS_SYNC_SECONDS": env_float("ALERTS_SYNC_SECONDS", 2.0, env=env),
        # webhooks
        "ALERTS_ALLOW_PRIVATE_WEBHOOKS": env_bool("ALERTS_ALLOW_PRIVATE_WEBHOOKS", False, env=env),
        "ALERTS_WEBHOOK_MAX_ATTEMPTS": env_int("ALERTS_WEBHOOK_MAX_ATTEMPTS", 5, env=env),
        "ALERTS_WEBHOOK_BACKOFF_SECONDS": env_float("ALERTS_WEBHOOK_BACKOFF_SECONDS", 1.0, env=env),
        "ALERTS_WEBHOOK_TIMEOUT_SECONDS": env_float("ALERTS_WEBHOOK_TIMEOUT_SECONDS", 10.0, env=env),
        "ALERTS_WEBHOOK_WORKERS": env_int("ALERTS_WEBHOOK_WORKERS", 4, env=env),
        # admin pages
        "ADMIN_SESSION_HOURS": env_float("ADMIN_SESSION_HOURS", 8.0, env=env),
        "RATELIMIT_ADMIN_LOGIN": env_str("RATELIMIT_ADMIN_LOGIN", "5 per minute", env=env),
        # tracing (optional extra: requirements-otel.txt)
        "OTEL_EXPORTER_OTLP_ENDPOINT": env_str("OTEL_EXPORTER_OTLP_ENDPOINT", env=env),
        "OTEL_SERVICE_NAME": env_str("OTEL_SERVICE_NAME", "tradeplatform", env=env),
    }
