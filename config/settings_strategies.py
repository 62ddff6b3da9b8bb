"""Strategies, backtest jobs, deployments and analytics settings (merged by ``config.load_config``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from config.env import ConfigError, env_bool, env_float, env_int, env_str

JOB_BACKENDS = ("auto", "embedded", "rq")


def settings(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    backend = env_str("JOBS_BACKEND", "auto", env=env)
    if backend not in JOB_BACKENDS:
        raise ConfigError(f"JOBS_BACKEND must be one of {', '.join(JOB_BACKENDS)}, got {backend!r}")
    return {
        # auto: RQ when REDIS_URL is set, else the in-process pool
        "JOBS_BACKEND": backend,
        "JOBS_WORKERS": env_int("JOBS_WORKERS", 2, env=env),
        "JOBS_MAX_PER_USER": env_int("JOBS_MAX_PER_USER", 2, env=env),
        "JOBS_HEARTBEAT_SECONDS": env_float("JOBS_HEARTBEAT_SECONDS", 5.0, env=env),
        "JOBS_STALE_SECONDS": env_float("JOBS_STALE_SECONDS", 60.0, env=env),
        "JOBS_TIMEOUT_SECONDS": env_int("JOBS_TIMEOUT_SECONDS", 1800, env=env),
        "JOBS_QUEUE": env_str("JOBS_QUEUE", "backtests", env=env),
        "BACKTEST_MAX_CSV_BYTES": env_int("BACKTEST_MAX_CSV_BYTES", 128 * 1024 * 1024, env=env),
        "STRATEGY_PLUGINS_DIR": env_str("STRATEGY_PLUGINS_DIR", env=env),
        # None (unset): resume running deployments at start-up except under TESTING
        "DEPLOYMENTS_AUTOSTART": None
        if env_str("DEPLOYMENTS_AUTOSTART", env=env) is None
        else env_bool("DEPLOYMENTS_AUTOSTART", True, env=env),
        # IST time after which the session-close tasks run (DAY-order expiry, equity snapshots)
        "SESSION_TASKS_TIME": env_str("SESSION_TASKS_TIME", "15:35", env=env),
        "SESSION_SCHEDULER": None
        if env_str("SESSION_SCHEDULER", env=env) is None
        else env_bool("SESSION_SCHEDULER", True, env=env),
    }
