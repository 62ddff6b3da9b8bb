"""Shared fixtures.

Two runs: on the defaults (a temporary SQLite file, no Redis) and, when TEST_DATABASE_URL /
TEST_REDIS_URL are set, against real PostgreSQL and Redis. The schema is always built by running
the migrations, never by ``create_all``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

USING_POSTGRES = bool(os.environ.get("TEST_DATABASE_URL"))
USING_REDIS = bool(os.environ.get("TEST_REDIS_URL"))
# Tables filled by migrations (reference data) that tests must not wipe.
PRESERVED_TABLES = {"alembic_version", "instruments"}

_tmp = tempfile.mkdtemp(prefix="tp-tests-")
if not USING_POSTGRES:
    os.environ["TEST_DATABASE_URL_DEFAULT"] = f"sqlite:///{_tmp}/test.db"


def app_config(**overrides) -> dict:
    """Config overrides for a test app (pass to ``create_app``)."""
    cfg = {
        "ENV_NAME": "testing",
        "SQLALCHEMY_DATABASE_URI": os.environ.get("TEST_DATABASE_URL")
        or os.environ["TEST_DATABASE_URL_DEFAULT"],
        "REDIS_URL": os.environ.get("TEST_REDIS_URL"),
        "LOG_LEVEL": "WARNING",
        # Tests place MARKET orders at whatever hour they run: the simulated session is always open.
        # Session tests turn the exchange's clock on (MARKET_CLOCK="exchange") with a fixed time.
        "MARKET_CLOCK": "always_open",
        "AUDIT_ANCHOR_PATH": f"{_tmp}/audit-anchor.json",
    }
    cfg.update(overrides)
    return cfg


def _reset_database(app) -> None:
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    from backend.extensions import db

    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        upgrade()
        del downgrade


@pytest.fixture(scope="session")
def app():
    from backend import create_app

    application = create_app(app_config())
    _reset_database(application)
    yield application


@pytest.fixture(autouse=True)
def _clean_state(request):
    yield
    if "app" not in request.fixturenames:
        return
    app = request.getfixturevalue("app")
    from sqlalchemy import inspect, text

    from backend.extensions import db, limiter, redis_store

    with app.app_context():
        db.session.remove()
        existing = set(inspect(db.engine).get_table_names())
        tables = [
            t.name
            for t in reversed(db.metadata.sorted_tables)
            if t.name not in PRESERVED_TABLES and t.name in existing
        ]
        with db.engine.begin() as conn:
            if db.engine.dialect.name == "postgresql":
                if tables:
                    conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                for name in tables:
                    conn.execute(text(f"DELETE FROM {name}"))
        with contextlib.suppress(FileNotFoundError):  # the audit anchor belongs to the wiped chain
            os.unlink(f"{_tmp}/audit-anchor.json")
        with contextlib.suppress(Exception):  # storage may be gone in a failure test
            limiter.reset()
        if redis_store.client is not None:
            redis_store.client.flushdb()
        from backend.services.cache import get_cache

        get_cache(app).flush()  # the in-process LRU outlives a test just like Redis would


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_user(app):
    """Create a user and return ``(user_id, headers)`` with a fresh access token."""
    from backend.extensions import db
    from backend.services import auth as auth_service

    counter = {"n": 0}

    def _make(role: str = "trader", email: str | None = None, password: str = "correct-horse-battery"):
        counter["n"] += 1
        email = email or f"{role}{counter['n']}@example.com"
        with app.app_context():
            user = auth_service.create_user(email, password, role)
            db.session.commit()
            pair = auth_service.login(email, password)
            return user.id, {"Authorization": f"Bearer {pair.access_token}"}

    return _make


@pytest.fixture
def trader(make_user):
    return make_user("trader")


@pytest.fixture
def admin(make_user):
    return make_user("admin")


@pytest.fixture
def market_clock(app):
    """Pin the market clock: ``set(when, clock="exchange")`` with an aware datetime. The default
    ``clock`` turns the exchange's sessions on for paper accounts too; restored afterwards."""
    before = app.config.get("MARKET_CLOCK")

    def _set(when, clock: str = "exchange"):
        app.extensions["market_clock"] = lambda: when
        app.config["MARKET_CLOCK"] = clock

    yield _set
    app.extensions.pop("market_clock", None)
    app.config["MARKET_CLOCK"] = before
