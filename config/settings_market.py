"""Market data, cache and live-feed settings (merged into ``app.config`` by ``config.load_config``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from config.env import ConfigError, env_bool, env_float, env_int, env_list, env_str

ROOT = Path(__file__).resolve().parent.parent
PROVIDERS = ("simulated", "csv", "upstox")
QUOTE_MODES = ("single", "batch")  # backend.realtime.feed.QUOTE_MODES

CLOCKS = ("exchange", "always_open")
FEED_MODES = ("ltpc", "full", "option_greeks")  # backend.domain.market.upstox_feed.MODES
FX_PROVIDERS = ("simulated", "csv")  # backend.domain.market.fx (others register in code)


def settings(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    provider = env_str("MARKET_DATA_PROVIDER", "simulated", env=env)
    if provider not in PROVIDERS:
        raise ConfigError(f"MARKET_DATA_PROVIDER must be one of {', '.join(PROVIDERS)}, got {provider!r}")
    quote_mode = env_str("SOCKETIO_QUOTE_MODE", "single", env=env)
    if quote_mode not in QUOTE_MODES:
        raise ConfigError(f"SOCKETIO_QUOTE_MODE must be one of {', '.join(QUOTE_MODES)}, got {quote_mode!r}")
    clock = env_str("MARKET_CLOCK", "exchange", env=env)
    if clock not in CLOCKS:
        raise ConfigError(f"MARKET_CLOCK must be one of {', '.join(CLOCKS)}, got {clock!r}")
    if clock == "always_open" and provider != "simulated":
        raise ConfigError(
            "MARKET_CLOCK=always_open needs MARKET_DATA_PROVIDER=simulated (real markets keep hours)"
        )
    feed_mode = env_str("UPSTOX_FEED_MODE", "full", env=env)
    if feed_mode not in FEED_MODES:
        raise ConfigError(f"UPSTOX_FEED_MODE must be one of {', '.join(FEED_MODES)}, got {feed_mode!r}")
    stall = env_float("UPSTOX_FEED_STALL_SECONDS", 10.0, env=env)
    if stall <= 0:
        raise ConfigError(f"UPSTOX_FEED_STALL_SECONDS must be > 0, got {stall}")
    fx_provider = env_str("FX_PROVIDER", "simulated", env=env)
    if fx_provider not in FX_PROVIDERS:
        raise ConfigError(f"FX_PROVIDER must be one of {', '.join(FX_PROVIDERS)}, got {fx_provider!r}")
    csv_dir = env_str("CSV_DATA_DIR", str(ROOT.parent / "shared" / "data"), env=env)
    return {
        "MARKET_DATA_PROVIDER": provider,
        # simulated market
        "SIM_SEED": env_str("SIM_SEED", "42", env=env),
        "SIM_DRIFT": env_float("SIM_DRIFT", 0.08, env=env),
        "SIM_VOL": env_float("SIM_VOL", 0.25, env=env),
        "SIM_INDEX_VOL": env_float("SIM_INDEX_VOL", 0.15, env=env),
        "SIM_RATE": env_float("SIM_RATE", 0.065, env=env),
        # futures' cost of carry: RBI policy repo rate, 5.25% from 5 Dec 2025 (RBI MPC, businesstoday.in)
        "SIM_CARRY_RATE": env_float("SIM_CARRY_RATE", 0.0525, env=env),
        "SIM_IV_ATM": env_float("SIM_IV_ATM", 0.0, env=env) or None,  # 0 / unset: the underlying's vol
        "SIM_IV_SKEW": env_float("SIM_IV_SKEW", -0.8, env=env),
        "SIM_IV_CURVATURE": env_float("SIM_IV_CURVATURE", 4.0, env=env),
        "SIM_STRIKES_EACH_SIDE": env_int("SIM_STRIKES_EACH_SIDE", 20, env=env),
        # CSV provider
        "CSV_DATA_DIR": csv_dir,
        # FX rates for portfolio simulations in another currency (docs/portfolios.md)
        "FX_PROVIDER": fx_provider,
        "FX_CSV_DIR": env_str("FX_CSV_DIR", csv_dir, env=env),
        # Upstox provider (token from config until the broker token store lands)
        "UPSTOX_BASE_URL": env_str("UPSTOX_BASE_URL", "https://api.upstox.com", env=env),
        "UPSTOX_ACCESS_TOKEN": env_str("UPSTOX_ACCESS_TOKEN", env=env),
        "UPSTOX_TIMEOUT_SECONDS": env_float("UPSTOX_TIMEOUT_SECONDS", 10.0, env=env),
        # Upstox V3 market-data websocket (docs/brokers.md): streams quotes while it is healthy,
        # REST polling covers whatever it does not stream (down, stalled, over the key limit)
        "UPSTOX_FEED_ENABLED": env_bool("UPSTOX_FEED_ENABLED", True, env=env),
        # host of GET /v3/feed/market-data-feed/authorize (the socket URI comes from its answer)
        "UPSTOX_FEED_BASE_URL": env_str(
            "UPSTOX_FEED_BASE_URL", env_str("UPSTOX_BASE_URL", "https://api.upstox.com", env=env), env=env
        ),
        # ltpc | full (D5 depth: real bid/ask for paper fills) | option_greeks; limits per mode are
        # Upstox's (V3 feed doc): ltpc 5000, option_greeks 3000, full 2000 keys
        "UPSTOX_FEED_MODE": feed_mode,
        "UPSTOX_FEED_STALL_SECONDS": stall,  # silence, in session, before the watchdog closes it
        "UPSTOX_FEED_BACKOFF_INITIAL_SECONDS": env_float("UPSTOX_FEED_BACKOFF_INITIAL_SECONDS", 0.5, env=env),
        "UPSTOX_FEED_BACKOFF_MAX_SECONDS": env_float("UPSTOX_FEED_BACKOFF_MAX_SECONDS", 30.0, env=env),
        "UPSTOX_FEED_TOKEN_CHECK_SECONDS": env_float("UPSTOX_FEED_TOKEN_CHECK_SECONDS", 5.0, env=env),
        "UPSTOX_FEED_KEYS_PER_REQUEST": env_int("UPSTOX_FEED_KEYS_PER_REQUEST", 500, env=env),
        # calendar: session hours and yearly holiday lists are data files (docs/trading.md)
        "MARKET_CALENDAR_DIR": env_str("MARKET_CALENDAR_DIR", str(ROOT / "config" / "calendars"), env=env),
        # extra YYYY-MM-DD days closing every segment, on top of the files and `flask calendar load`
        "MARKET_HOLIDAYS": env_list("MARKET_HOLIDAYS", [], env=env),
        # exchange: sessions and holidays apply; always_open: a 24x7 simulated session for paper
        # accounts on the simulated market (never a live account, never another provider)
        "MARKET_CLOCK": clock,
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
