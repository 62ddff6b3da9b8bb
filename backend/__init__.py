"""Application factory. ``create_app`` is a sequence of named ``register_*`` steps."""

from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask

from config import load_config

log = logging.getLogger(__name__)


def create_app(config: str | dict[str, Any] | None = None) -> Flask:
    """Build the app. ``config`` is a config name, a dict of overrides, or None (``APP_ENV``)."""
    overrides: dict[str, Any] = {}
    name = None
    if isinstance(config, dict):
        overrides = dict(config)
        name = overrides.pop("ENV_NAME", None)
    elif isinstance(config, str):
        name = config
    if (name or overrides.get("ENV_NAME")) != "testing":
        _load_dotenv()
    app = Flask(__name__, instance_relative_config=True)
    settings = load_config(name, instance_path=app.instance_path)
    settings.update(overrides)
    app.config.update(settings)
    os.makedirs(app.instance_path, exist_ok=True)
    _background_defaults(app)

    register_logging(app)
    register_extensions(app)
    register_request_hooks(app)
    register_api(app)
    register_ops(app)
    register_errorhandlers(app)
    register_cli(app)
    register_realtime(app)
    register_services(app)
    return app


def _load_dotenv() -> None:
    """Read ``.env`` (nearest from the working directory up) as ``.env.example`` promises.

    Real environment variables win. ``flask`` commands already do this; gunicorn and
    ``python -m backend`` need it."""
    from dotenv import find_dotenv, load_dotenv

    path = find_dotenv(usecwd=True)
    if path:
        load_dotenv(path, override=False)


def is_one_shot_command() -> bool:
    """``flask db upgrade``, ``flask users bootstrap``...: any ``flask`` command but ``run``."""
    import sys

    prog = os.path.basename(sys.argv[0]) if sys.argv else ""
    return prog == "flask" and "run" not in sys.argv[1:]


def _background_defaults(app: Flask) -> None:
    """A one-shot command starts no background work (issue 17: `flask db upgrade` on an empty
    database ran job recovery, deployment resume and broker reconciliation before the tables
    existed). Explicit settings still win."""
    app.config.setdefault("BACKGROUND_WORK", not app.config.get("TESTING") and not is_one_shot_command())
    if app.config["BACKGROUND_WORK"]:
        return
    for key in ("FEED_AUTOSTART", "DEPLOYMENTS_AUTOSTART", "ALERTS_SUBSCRIBE", "SESSION_SCHEDULER"):
        if app.config.get(key) is None:
            app.config[key] = False
    if not app.config.get("TESTING"):
        app.config["BROKER_RECONCILE_ON_START"] = False


def register_logging(app: Flask) -> None:
    from backend.observability.logging import configure_logging

    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_JSON"])


def register_extensions(app: Flask) -> None:
    from backend import database
    from backend.extensions import compress, cors, db, limiter, migrate, redis_store, socketio

    database.configure_engine_options(app)
    db.init_app(app)
    database.install_engine_hooks(app)
    from backend.services.trading.paper_broker import install_ledger_hooks

    install_ledger_hooks(db.session)  # fills queue their ledger rows for the flush (paper_broker)
    migrate.init_app(
        app,
        db,
        render_as_batch=True,
        compare_type=True,
        directory=os.path.join(os.path.dirname(app.root_path), "migrations"),
    )
    redis_store.init_app(app)

    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"] or "memory://")
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    # The X-RateLimit headers are written after the view committed: a storage failure there must not
    # turn a filled order into a 500 (issue 17). The limit check itself falls back to memory first.
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    app.config.setdefault("RATELIMIT_STRATEGY", "moving-window")
    app.config.setdefault("RATELIMIT_DEFAULT", app.config["RATELIMIT_DEFAULT"])
    limiter.init_app(app)

    compress.init_app(app)
    if app.config["CORS_ORIGINS"]:
        # An explicit allow-list only: credentials are never combined with "*".
        cors.init_app(app, origins=app.config["CORS_ORIGINS"], supports_credentials=True)
    socketio.init_app(app, **socketio_options(app))


def socketio_options(app: Flask) -> dict[str, Any]:
    """Flask-SocketIO settings: threading mode (werkzeug and gunicorn gthread), Redis queue if any."""
    options: dict[str, Any] = {
        "async_mode": "threading",
        "message_queue": app.config["REDIS_URL"],
        "cors_allowed_origins": app.config["CORS_ORIGINS"] or [],
        "logger": False,
        "engineio_logger": False,
    }
    if app.config["REDIS_URL"]:
        from backend.realtime.pubsub import BatchingRedisManager

        options["client_manager"] = BatchingRedisManager(app.config["REDIS_URL"], channel="flask-socketio")
    return options


def register_request_hooks(app: Flask) -> None:
    from backend import http_hooks

    http_hooks.install(app)


def register_api(app: Flask) -> None:
    from backend.api import register_api as _register

    _register(app)


def register_ops(app: Flask) -> None:
    from backend.ops import ops

    app.register_blueprint(ops)


def register_errorhandlers(app: Flask) -> None:
    from backend.errors import register_errorhandlers as _register

    _register(app)


def register_cli(app: Flask) -> None:
    from backend.cli import register_commands

    register_commands(app)


def register_realtime(app: Flask) -> None:
    """Socket.IO handlers and the live feed (built by the market-data issue)."""
    from backend import realtime

    realtime.init_app(app)


def register_services(app: Flask) -> None:
    """Background services that domains attach (feed subscribers, job runners)."""
    from backend.services import cache, market_data

    cache.init_cache(app)
    market_data.init_app(app)
    from backend.services.alerts import init_app as init_alerts

    init_alerts(app)
    from backend.admin_ui import init_app as init_admin_ui

    init_admin_ui(app)
    from backend.dashboard import init_app as init_dashboard

    init_dashboard(app)
    from backend.observability.tracing import init_tracing

    init_tracing(app)
    from backend.services.trading import init_app as _trading

    _trading(app)
    from backend.services.strategies import init_app as _strategies

    _strategies(app)
    from backend.services.broker import init_app as _broker

    _broker(app)
    from backend.services.scheduler import init_app as _scheduler

    _scheduler(app)
