"""Security and operations settings added by issue 17 (merged into ``app.config`` by ``load_config``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from config.env import env_int, env_str


def settings(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        # The signed head of the audit chain, kept outside the database (empty: instance/audit-anchor.json).
        "AUDIT_ANCHOR_PATH": env_str("AUDIT_ANCHOR_PATH", env=env),
        # Seconds a client is told to wait (Retry-After) when Redis or the database is unreachable.
        "UNAVAILABLE_RETRY_AFTER_SECONDS": env_int("UNAVAILABLE_RETRY_AFTER_SECONDS", 5, env=env),
    }
