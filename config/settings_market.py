"""Market data, cache and live-feed settings (merged into ``app.config`` by ``config.load_config``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from config.env import ConfigError, env_bool, env_float, env_int, env_list, env_str

ROOT = Path(__file__).resolve().parent.parent
PROVIDERS = ("simulated", "csv", "upstox")
QUOTE_MODES = ("single", "batch")  # backend.realtime.feed.QUOTE_MODES

# NSE trading holidays (equity segment). Override with MARKET_HOLIDAYS=YYYY-MM-DD,...
DEFAULT_HOLIDAYS = [
    # 2025
    "2025-02-26",
    "2025-03-14",
    "2025-03-31",
    "2025-04-10",
    "2025-04-14",
    "2025-04-18",
    "2025-05-01",
    "2025-08-15",
    "2025-08-27",
    "2025-10-02",
    "2025-10-21",
    "2025-10-22",
    "2025-11-05",
    "2025-12-25",
    # 2026 (provisional until NSE's circular for the year; override with MARKET_HOLIDAYS)
    "2026-01-26",
    "2026-03-03",
    "2026-03-26",
    "2026-03-31",
    "2026-04-03",
    "2026-04-14",
    "2026-05-01",
    "2026-05-28",
    "2026-06-26",
    "2026-09-14",
    "2026-10-02",
    "2026-10-20",
    "2026-11-10",
    "2026-11-24",
    "2026-12-25",
]


def settings(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    provider = env_str("MARKET_DATA_PROVIDER", "simulated", env=env)
    if provider not in PROVIDERS:
        raise ConfigError(f"MARKET_DATA_PROVIDER must be one of {', '.join(PROVIDERS)}, got {provider!r}")
    quote_mode = env_str("SOCKETIO_QUOTE_MODE", "single", env=env)
    if quote_mode not in QUOTE_MODES:
        raise ConfigError(f"SOCKETIO_QUOTE_MODE must be one of {', '.join(QUOTE_MODES)}, got {quote_mode!r}")
    return {
        "MARKET_DATA_PROVIDER": provider,
        # simulated market
        "SIM_SEED": env_str("SIM_SEED", "42", env=env),
        "SIM_DRIFT": env_float("SIM_DRIFT", 0.08, env=env),
        "SIM_VOL": env_float("SIM_VOL", 0.25, env=env),
        "SIM_INDEX_VOL": env_float("SIM_INDEX_VOL", 0.15, env=env),
        "SIM_RATE": env_float("SIM_RATE", 0.065, env=env),
        "SIM_IV_ATM": env_float("SIM_IV_ATM", 0.0, env=env) or None,  # 0 / unset: the underlying's vol
        "SIM_IV_SKEW": env_float("SIM_IV_SKEW", -0.8, env=env),
        "SIM_IV_CURVATURE": env_float("SIM_IV_CURVATURE", 4.0, env=env),
        "SIM_STRIKES_EACH_SIDE": env_int("SIM_STRIKES_EACH_SIDE", 20, env=env),
        # CSV provider
        "CSV_DATA_DIR": env_str("CSV_DATA_DIR", str(ROOT.parent / "shared" / "data"), env=env),
        # Upstox provider (token from config until the broker token store lands)
        "UPSTOX_BASE_URL": env_str("UPSTOX_BASE_URL", "https://api.upstox.com", env=env),
        "UPSTOX_ACCESS_TOKEN": env_str("UPSTOX_ACCESS_TOKEN", env=env),
        "UPSTOX_TIMEOUT_SECONDS": env_float("UPSTOX_TIMEOUT_SECONDS", 10.0, env=env),
        # calendar
        "MARKET_HOLIDAYS": env_list("MARKET_HOLIDAYS", DEFAULT_HOLIDAYS, env=env),
        # cache (seconds)
        "CACHE_MAX_ENTRIES": env_int("CACHE_MAX_ENTRIES", 10_000, env=env),
        "CACHE_TTL_QUOTES": env_float("CACHE_TTL_QUOTES", 1.0, env=env),
        "CACHE_TTL_INSTRUMENTS": env_float("CACHE_TTL_INSTRUMENTS", 3600.0, env=env),
        "CACHE_TTL_OPTION_CHAIN": env_float("CACHE_TTL_OPTION_CHAIN", 5.0, env=env),
        "CACHE_TTL_CANDLES": {
            "1m": env_float("CACHE_TTL_CANDLES_1M", 30.0, env=env),
            "5m": env_float("CACHE_TTL_CANDLES_5M", 60.0, env=env),
            "15m": env_float("CACHE_TTL_CANDLES_15M", 120.0, env=env),
            "1h": env_float("CACHE_TTL_CANDLES_1H", 300.0, env=env),
            "1d": env_float("CACHE_TTL_CANDLES_1D", 1800.0, env=env),
        },
        "QUOTES_MAX_SYMBOLS": env_int("QUOTES_MAX_SYMBOLS", 500, env=env),
        # live feed
        # None (unset): start the feed except under TESTING; true/false forces it.
        "FEED_AUTOSTART": None
        if env_str("FEED_AUTOSTART", env=env) is None
        else env_bool("FEED_AUTOSTART", True, env=env),
        "FEED_INTERVAL_MS": env_int("FEED_INTERVAL_MS", 1000, env=env),
        "FEED_LEADER_TTL": env_float("FEED_LEADER_TTL", 5.0, env=env),
        "FEED_WATCHDOG_STALL_SECONDS": env_float("FEED_WATCHDOG_STALL_SECONDS", 5.0, env=env),
        "FEED_SYMBOLS_ALWAYS": env_list("FEED_SYMBOLS_ALWAYS", [], env=env),
        "SOCKETIO_MAX_SUBSCRIPTIONS": env_int("SOCKETIO_MAX_SUBSCRIPTIONS", 100, env=env),
        # quote delivery of a connection that does not pick one in `subscribe`: per-tick `quote`
        # events (single) or one `quotes` list per feed cycle (batch); docs/realtime.md
        "SOCKETIO_QUOTE_MODE": quote_mode,
    }
