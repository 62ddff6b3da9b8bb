"""Paper-trading settings (merged into ``app.config`` by ``config.load_config``)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from config.env import ConfigError, env_bool, env_str


def settings(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    raw = env_str("PAPER_STARTING_CASH", "1000000", env=env) or "1000000"
    try:
        cash = Decimal(raw)
    except InvalidOperation:
        raise ConfigError(f"PAPER_STARTING_CASH must be a decimal amount, got {raw!r}") from None
    if not cash.is_finite() or cash <= 0:
        raise ConfigError(f"PAPER_STARTING_CASH must be positive, got {raw!r}")
    return {
        "PAPER_STARTING_CASH": cash,
        # subscribe the paper engine to the live tick bus (resting orders, stops); off in unit tests
        "PAPER_TICK_MATCHING": env_bool("PAPER_TICK_MATCHING", True, env=env),
    }
