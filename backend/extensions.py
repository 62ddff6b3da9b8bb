"""Extensions, created unbound. ``create_app`` binds each one with ``init_app``.

Nothing here reads configuration or secrets: that happens in ``init_app``.
"""

from __future__ import annotations

from flask_compress import Compress
from flask_cors import CORS
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_restx import Api
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names so migrations are identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class LazyMigrate:
    """Flask-Migrate, bound when needed.

    Importing flask_migrate pulls in alembic (~0.15 s of every process start), yet only the
    ``flask`` CLI (``flask db ...``) and the tests use it. Under the CLI (a click context is
    active while the app is built) it binds at once, which also registers the ``db`` commands;
    elsewhere the first access to ``app.extensions["migrate"]`` binds it.
    """

    def init_app(self, app, db, **kwargs) -> None:
        import click

        if click.get_current_context(silent=True) is not None:
            from flask_migrate import Migrate

            Migrate().init_app(app, db, **kwargs)
        else:
            app.extensions["migrate"] = _PendingMigrate(app, db, kwargs)


class _PendingMigrate:
    def __init__(self, app, db, kwargs: dict) -> None:
        self._bind = (app, db, kwargs)

    def __getattr__(self, name: str):
        from flask_migrate import Migrate

        app, db, kwargs = self._bind
        Migrate().init_app(app, db, **kwargs)  # replaces app.extensions["migrate"]
        return getattr(app.extensions["migrate"], name)


class PlatformApi(Api):
    """restx Api whose errors are rendered by the app-wide envelope handlers.

    Raising here makes restx fall back to Flask's handler, so errors inside
    resources and outside the blueprint share one code path.
    """

    def handle_error(self, e: Exception):  # noqa: D401
        raise e

    # Functions ``hook(spec: dict) -> None`` that finish the generated document in place, once,
    # in the app context of the first /swagger.json request (values that come from config).
    spec_hooks: list = []

    @property
    def __schema__(self) -> dict:
        schema = super().__schema__
        if "error" not in schema and not schema.get("x-finished"):
            with self._schema_lock:
                if not schema.get("x-finished"):
                    for hook in self.spec_hooks:
                        hook(schema)
                    schema["x-finished"] = True
        return schema


db = SQLAlchemy(model_class=Base)
migrate = LazyMigrate()
limiter = Limiter(key_func=get_remote_address)
socketio = SocketIO()
compress = Compress()
cors = CORS()
api = PlatformApi(
    title="Trading Platform API",
    version="1.0",
    description="Paper and Upstox trading, market data, strategies, backtests, analytics and admin.",
    doc="/docs",
    validate=False,
    authorizations={
        "Bearer": {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Paste `Bearer <access_token>` from POST /api/v1/auth/login",
        },
        "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    },
    security=[{"Bearer": []}, {"ApiKey": []}],
)


class RedisHolder:
    """Optional Redis connection: ``client`` is None when REDIS_URL is not configured."""

    def __init__(self) -> None:
        self.client = None
        self.url: str | None = None

    def init_app(self, app) -> None:
        self.url = app.config.get("REDIS_URL")
        if self.url:
            import redis

            self.client = redis.Redis.from_url(
                self.url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30
            )
        else:
            self.client = None
        app.extensions["redis"] = self


redis_store = RedisHolder()

from backend.security.token_store import TokenStore  # noqa: E402

token_store = TokenStore()
