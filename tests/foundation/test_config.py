"""Factory and configuration validation."""

import json

import pytest
from cryptography.fernet import Fernet

from config import ConfigError, load_config

STRONG = "x" * 8 + "A-strong-random-looking-secret-value-123"


def prod_env(**overrides):
    env = {
        "APP_ENV": "production",
        "SECRET_KEY": STRONG,
        "JWT_SECRET_KEY": STRONG + "jwt",
        "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": "postgresql://u@db/app",
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def test_production_accepts_complete_secrets(tmp_path):
    cfg = load_config(env=prod_env(), instance_path=str(tmp_path))
    assert cfg["ENV_NAME"] == "production"
    assert cfg["JWT_ALGORITHM"] == "HS256"


@pytest.mark.parametrize("missing", ["SECRET_KEY", "JWT_SECRET_KEY", "TOKEN_ENCRYPTION_KEYS"])
def test_production_refuses_missing_secret_and_names_it(tmp_path, missing):
    with pytest.raises(ConfigError, match=missing):
        load_config(env=prod_env(**{missing: None}), instance_path=str(tmp_path))


@pytest.mark.parametrize("weak", ["changeme", "secret", "short"])
def test_production_refuses_weak_secret(tmp_path, weak):
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config(env=prod_env(SECRET_KEY=weak), instance_path=str(tmp_path))


def test_production_refuses_non_fernet_key(tmp_path):
    with pytest.raises(ConfigError, match="TOKEN_ENCRYPTION_KEYS"):
        load_config(env=prod_env(TOKEN_ENCRYPTION_KEYS="not-a-key"), instance_path=str(tmp_path))


def test_production_refuses_sqlite(tmp_path):
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_config(env=prod_env(DATABASE_URL="sqlite:///x.db"), instance_path=str(tmp_path))


def test_development_generates_and_keeps_secrets(tmp_path):
    first = load_config("development", env={}, instance_path=str(tmp_path))
    second = load_config("development", env={}, instance_path=str(tmp_path))
    assert len(first["SECRET_KEY"]) >= 32
    assert first["SECRET_KEY"] == second["SECRET_KEY"]
    assert first["JWT_SECRET_KEY"] != first["SECRET_KEY"]
    stored = json.loads((tmp_path / "secrets.json").read_text())
    assert stored["SECRET_KEY"] == first["SECRET_KEY"]
    assert (tmp_path / "secrets.json").stat().st_mode & 0o077 == 0


def test_typed_helpers_reject_garbage(tmp_path):
    with pytest.raises(ConfigError, match="DB_POOL_SIZE"):
        load_config("testing", env={"DB_POOL_SIZE": "many"}, instance_path=str(tmp_path))
    with pytest.raises(ConfigError, match="OPEN_REGISTRATION"):
        load_config("testing", env={"OPEN_REGISTRATION": "perhaps"}, instance_path=str(tmp_path))


def test_unknown_app_env(tmp_path):
    with pytest.raises(ConfigError, match="APP_ENV"):
        load_config(env={"APP_ENV": "staging"}, instance_path=str(tmp_path))


def test_factory_applies_restx_settings(app):
    assert app.config["ERROR_INCLUDE_MESSAGE"] is False
    assert app.config["RESTX_ERROR_404_HELP"] is False
    assert app.config["MAX_CONTENT_LENGTH"] == 1024 * 1024
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith(("sqlite", "postgresql+psycopg"))


def test_env_example_documents_every_variable():
    """Every variable the config reads is in .env.example and docs/configuration.md."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    sources = "".join(p.read_text() for p in (root / "config").glob("*.py"))
    names = set(re.findall(r'env_(?:str|int|float|bool|list)\(\s*"([A-Z0-9_]+)"', sources))
    example = (root / ".env.example").read_text()
    docs = (root / "docs" / "configuration.md").read_text()
    missing_example = sorted(n for n in names if n not in example)
    missing_docs = sorted(n for n in names if n not in docs)
    assert not missing_example, f".env.example lacks {missing_example}"
    assert not missing_docs, f"docs/configuration.md lacks {missing_docs}"


@pytest.mark.parametrize(("value", "expected"), [(None, True), ("false", False), ("true", True)])
def test_postgresql_pool_settings_come_from_config(tmp_path, value, expected):
    from flask import Flask

    from backend.database import configure_engine_options

    env = {"DB_POOL_SIZE": "3", "DB_POOL_RECYCLE": "60"}
    if value is not None:
        env["DB_POOL_PRE_PING"] = value
    app = Flask("probe")
    app.config.update(load_config("testing", env=env, instance_path=str(tmp_path)))
    app.config["SQLALCHEMY_DATABASE_URI"] = "postgresql://u@db:5432/x"  # testing pins its own URL
    configure_engine_options(app)
    opts = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")
    assert (opts["pool_size"], opts["pool_recycle"], opts["pool_pre_ping"]) == (3, 60, expected)
    assert "statement_timeout=" in opts["connect_args"]["options"]
