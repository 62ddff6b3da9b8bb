"""Configuration: Development, Testing and Production.

All environment parsing happens here (through ``config.env``) when
``load_config`` is called by the app factory, never at import time.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from config.env import ConfigError, env_bool, env_float, env_int, env_list, env_str

__all__ = ["ConfigError", "load_config", "CONFIGS"]

ROOT = Path(__file__).resolve().parent.parent

# Values that must never be accepted as production secrets.
WEAK_SECRETS = {
    "",
    "secret",
    "changeme",
    "change-me",
    "dev",
    "development",
    "test",
    "password",
    "please-change-me",
    "your-secret-key",
    "supersecret",
}
MIN_SECRET_LENGTH = 32
SECRET_VARS = ("SECRET_KEY", "JWT_SECRET_KEY", "TOKEN_ENCRYPTION_KEYS")


class BaseConfig:
    """Settings shared by every environment. ``load`` returns a plain dict for ``app.config``."""

    NAME = "base"
    DEBUG = False
    TESTING = False

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"OPEN_REGISTRATION": False, "LOG_JSON": True}

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, instance_path: str | None = None) -> dict[str, Any]:
        d = cls.defaults()
        instance = Path(instance_path or ROOT / "instance")
        default_db = f"sqlite:///{instance / 'app.db'}"
        cfg: dict[str, Any] = {
            "ENV_NAME": cls.NAME,
            "DEBUG": cls.DEBUG,
            "TESTING": cls.TESTING,
            # secrets (validated per environment below)
            "SECRET_KEY": env_str("SECRET_KEY", env=env),
            "JWT_SECRET_KEY": env_str("JWT_SECRET_KEY", env=env),
            "TOKEN_ENCRYPTION_KEYS": env_list("TOKEN_ENCRYPTION_KEYS", env=env),
            # JWT
            "JWT_ALGORITHM": "HS256",  # pinned: never taken from the token header
            "JWT_ISSUER": env_str("JWT_ISSUER", "tradeplatform", env=env),
            "JWT_AUDIENCE": env_str("JWT_AUDIENCE", "tradeplatform-api", env=env),
            "JWT_ACCESS_TTL_SECONDS": env_int("JWT_ACCESS_TTL_SECONDS", 900, env=env),
            "JWT_REFRESH_TTL_SECONDS": env_int("JWT_REFRESH_TTL_SECONDS", 7 * 24 * 3600, env=env),
            "JWT_LEEWAY_SECONDS": env_int("JWT_LEEWAY_SECONDS", 10, env=env),
            # database
            "SQLALCHEMY_DATABASE_URI": env_str("DATABASE_URL", default_db, env=env),
            "DB_POOL_SIZE": env_int("DB_POOL_SIZE", 10, env=env),
            "DB_MAX_OVERFLOW": env_int("DB_MAX_OVERFLOW", 20, env=env),
            "DB_POOL_RECYCLE": env_int("DB_POOL_RECYCLE", 1800, env=env),
            "DB_POOL_PRE_PING": env_bool("DB_POOL_PRE_PING", True, env=env),
            "DB_STATEMENT_TIMEOUT_MS": env_int("DB_STATEMENT_TIMEOUT_MS", 15000, env=env),
            "SLOW_QUERY_MS": env_float("SLOW_QUERY_MS", 200.0, env=env),
            # redis (absent -> in-process fallbacks)
            "REDIS_URL": env_str("REDIS_URL", env=env),
            # rate limits
            "RATELIMIT_ENABLED": env_bool("RATELIMIT_ENABLED", True, env=env),
            "RATELIMIT_DEFAULT": env_str("RATELIMIT_DEFAULT", "600 per minute", env=env),
            "RATELIMIT_LOGIN": env_str("RATELIMIT_LOGIN", "10 per minute", env=env),
            "RATELIMIT_ORDERS": env_str("RATELIMIT_ORDERS", "120 per minute", env=env),
            "RATELIMIT_SIGNALS_WEBHOOK": env_str("RATELIMIT_SIGNALS_WEBHOOK", "60 per minute", env=env),
            # HTTP
            "CORS_ORIGINS": env_list("CORS_ORIGINS", [], env=env),
            "MAX_CONTENT_LENGTH": env_int("MAX_CONTENT_LENGTH", 1024 * 1024, env=env),
            "TRUSTED_PROXY_COUNT": env_int("TRUSTED_PROXY_COUNT", 0, env=env),
            "COMPRESS_MIN_SIZE": env_int("COMPRESS_MIN_SIZE", 1024, env=env),
            # API conventions
            "PAGINATION_DEFAULT_LIMIT": env_int("PAGINATION_DEFAULT_LIMIT", 50, env=env),
            "PAGINATION_MAX_LIMIT": env_int("PAGINATION_MAX_LIMIT", 500, env=env),
            # users
            "OPEN_REGISTRATION": env_bool("OPEN_REGISTRATION", d["OPEN_REGISTRATION"], env=env),
            "ADMIN_EMAIL": env_str("ADMIN_EMAIL", env=env),
            "ADMIN_PASSWORD": env_str("ADMIN_PASSWORD", env=env),
            # observability
            "LOG_LEVEL": env_str("LOG_LEVEL", "INFO", env=env),
            "LOG_JSON": env_bool("LOG_JSON", d["LOG_JSON"], env=env),
            "METRICS_TOKEN": env_str("METRICS_TOKEN", env=env),
            # prometheus_client reads it too, at import: set it before the processes start
            "PROMETHEUS_MULTIPROC_DIR": env_str("PROMETHEUS_MULTIPROC_DIR", env=env),
            # trading
            "TRADING_CONFIG": env_str("TRADING_CONFIG", str(ROOT / "config" / "trading.yaml"), env=env),
            # flask-restx: our own envelope, no "did you mean" hints
            "ERROR_INCLUDE_MESSAGE": False,
            "RESTX_ERROR_404_HELP": False,
            "RESTX_MASK_SWAGGER": False,
            "RESTX_VALIDATE": False,
            "SWAGGER_UI_DOC_EXPANSION": "list",
            "JSON_SORT_KEYS": False,
            "INSTANCE_PATH": str(instance),
        }
        for section in _sections():
            cfg.update(section(env))
        cls.finalize(cfg, env, instance)
        return cfg

    @classmethod
    def finalize(cls, cfg: dict[str, Any], env: Mapping[str, str] | None, instance: Path) -> None:
        """Environment-specific fix-ups and validation."""


def _dev_secrets(instance: Path) -> dict[str, Any]:
    """Generate random development secrets once and keep them in ``instance/`` (git-ignored)."""
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    values = {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "JWT_SECRET_KEY": secrets.token_urlsafe(48),
        "TOKEN_ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
    }
    path.write_text(json.dumps(values))
    os.chmod(path, 0o600)
    return values


class DevelopmentConfig(BaseConfig):
    NAME = "development"
    DEBUG = False  # the reloader/debugger are opt-in via FLASK_DEBUG, never by default

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        # a person reads the development console: readable lines; production ships JSON
        return {"OPEN_REGISTRATION": True, "LOG_JSON": False}

    @classmethod
    def finalize(cls, cfg: dict[str, Any], env: Mapping[str, str] | None, instance: Path) -> None:
        generated = _dev_secrets(instance)
        for key in SECRET_VARS:
            if not cfg[key]:
                cfg[key] = generated[key]


class TestingConfig(BaseConfig):
    NAME = "testing"
    TESTING = True

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"OPEN_REGISTRATION": True, "LOG_JSON": True}

    @classmethod
    def finalize(cls, cfg: dict[str, Any], env: Mapping[str, str] | None, instance: Path) -> None:
        # Fresh random secrets per test app; nothing is written to disk.
        cfg["SECRET_KEY"] = cfg["SECRET_KEY"] or secrets.token_urlsafe(48)
        cfg["JWT_SECRET_KEY"] = cfg["JWT_SECRET_KEY"] or secrets.token_urlsafe(48)
        cfg["TOKEN_ENCRYPTION_KEYS"] = cfg["TOKEN_ENCRYPTION_KEYS"] or [Fernet.generate_key().decode()]
        test_db = env_str("TEST_DATABASE_URL", env=env)
        cfg["SQLALCHEMY_DATABASE_URI"] = test_db or "sqlite://"
        cfg["REDIS_URL"] = env_str("TEST_REDIS_URL", env=env) or cfg["REDIS_URL"]


class ProductionConfig(BaseConfig):
    NAME = "production"

    @classmethod
    def finalize(cls, cfg: dict[str, Any], env: Mapping[str, str] | None, instance: Path) -> None:
        for key in ("SECRET_KEY", "JWT_SECRET_KEY"):
            value = cfg[key]
            if not value:
                raise ConfigError(f"{key} is required in production and is not set")
            if value.lower() in WEAK_SECRETS or len(value) < MIN_SECRET_LENGTH:
                raise ConfigError(
                    f"{key} is a known weak value or shorter than {MIN_SECRET_LENGTH} characters; "
                    "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
                )
        keys = cfg["TOKEN_ENCRYPTION_KEYS"]
        if not keys:
            raise ConfigError("TOKEN_ENCRYPTION_KEYS is required in production and is not set")
        for key in keys:
            try:
                Fernet(key.encode())
            except (ValueError, TypeError) as exc:
                raise ConfigError(
                    "TOKEN_ENCRYPTION_KEYS holds a value that is not a Fernet key; generate one with: "
                    "python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'"
                ) from exc
        if cfg["SQLALCHEMY_DATABASE_URI"].startswith("sqlite") and not env_bool(
            "ALLOW_SQLITE_IN_PRODUCTION", False, env=env
        ):
            raise ConfigError(
                "DATABASE_URL must point at PostgreSQL in production (or set ALLOW_SQLITE_IN_PRODUCTION)"
            )


CONFIGS: dict[str, type[BaseConfig]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def _sections() -> list:
    """Per-domain settings: every ``config/settings_<domain>.py`` exposing ``settings(env) -> dict``."""
    import importlib
    import pkgutil

    found = []
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda i: i.name):
        if info.name.startswith("settings_"):
            found.append(importlib.import_module(f"config.{info.name}").settings)
    return found


def load_config(
    name: str | None = None, env: Mapping[str, str] | None = None, instance_path: str | None = None
) -> dict[str, Any]:
    """Parse the environment for the named configuration (default: ``APP_ENV`` or development)."""
    name = name or env_str("APP_ENV", "development", env=env)
    try:
        cls = CONFIGS[name]
    except KeyError as exc:
        raise ConfigError(f"APP_ENV must be one of {sorted(CONFIGS)}, got {name!r}") from exc
    return cls.load(env, instance_path)
