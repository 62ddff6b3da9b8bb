"""Engine options per database and SQLAlchemy event hooks (SQLite pragmas, slow-query log)."""

from __future__ import annotations

import logging
import time

from flask import Flask, g, has_request_context
from sqlalchemy import event

log = logging.getLogger("backend.sql")


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs given without a driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def configure_engine_options(app: Flask) -> None:
    url = normalise_url(app.config["SQLALCHEMY_DATABASE_URI"])
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    if url.startswith("postgresql"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            "pool_size": app.config["DB_POOL_SIZE"],
            "max_overflow": app.config["DB_MAX_OVERFLOW"],
            "pool_recycle": app.config["DB_POOL_RECYCLE"],
            "pool_pre_ping": app.config["DB_POOL_PRE_PING"],
            "connect_args": {"options": f"-c statement_timeout={int(app.config['DB_STATEMENT_TIMEOUT_MS'])}"},
        }
    elif url.startswith("sqlite"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            "connect_args": {"timeout": 30, "check_same_thread": False}
        }


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # Autocommit off in pysqlite breaks BEGIN IMMEDIATE; manage transactions ourselves.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn) -> None:
    # Take the write lock at BEGIN so concurrent read-modify-write transactions serialise.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def install_engine_hooks(app: Flask) -> None:
    from backend.extensions import db
    from backend.observability.metrics import SLOW_QUERIES

    threshold = float(app.config["SLOW_QUERY_MS"])
    with app.app_context():
        engine = db.engine
    from backend.observability.metrics import watch_pool

    watch_pool(engine)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)

    def before(conn, cursor, statement, parameters, context, executemany):
        conn.info.setdefault("query_start", []).append(time.perf_counter())

    def after(conn, cursor, statement, parameters, context, executemany):
        started = conn.info["query_start"].pop()
        elapsed_ms = (time.perf_counter() - started) * 1000
        if elapsed_ms >= threshold:
            SLOW_QUERIES.inc()
            log.warning(
                "slow query",
                extra={
                    "duration_ms": round(elapsed_ms, 2),
                    "statement": statement[:500],
                    "request_id": getattr(g, "request_id", None) if has_request_context() else None,
                },
            )

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
