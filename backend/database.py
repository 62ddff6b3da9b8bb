"""Engine options per database and SQLAlchemy event hooks (SQLite pragmas, slow-query log)."""

from __future__ import annotations

import logging
import re
import time

from flask import Flask, g, has_request_context
from sqlalchemy import event
from sqlalchemy.engine import Connection

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
    # Autocommit off in pysqlite hides BEGIN from us; manage transactions ourselves.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # WAL: readers never block the writer, nor the writer the readers.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


# Statements that need SQLite's write lock. SAVEPOINT counts: a savepoint opened in the read part
# would be lost by the COMMIT that upgrades the transaction.
_WRITE_STATEMENT = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|SAVEPOINT|CREATE|DROP|ALTER)\b", re.I)
_LOCKED = "sqlite_write_locked"
_CHANGES = "sqlite_changes_at_begin"


def _sqlite_begin(conn) -> None:
    """Start every transaction DEFERRED: a read takes no lock at all (WAL).

    Issue 17: every transaction used to start with BEGIN IMMEDIATE, so each read -- the token check
    of every request, the tick bus's per-tick queries, job recovery and deployment resume right after
    a restart -- queued for the one write lock, and waits past busy_timeout answered
    ``database is locked``. The write lock is now taken by :func:`_sqlite_claim_on_write` when the
    transaction first writes or locks a row.
    """
    conn.exec_driver_sql("BEGIN")
    conn.info[_LOCKED] = False
    conn.info[_CHANGES] = conn.connection.dbapi_connection.total_changes


def _upgrade(dbapi_conn, info: dict) -> None:
    # A deferred transaction that has only read cannot safely take the write lock in WAL mode: if
    # another writer committed since its first read, SQLite refuses with SQLITE_BUSY_SNAPSHOT at
    # once (no busy wait). The read part has changed nothing, so end it and start again IMMEDIATE:
    # the writes then run on the newest data, serialised, as READ COMMITTED + FOR UPDATE do on
    # PostgreSQL.
    info[_LOCKED] = True
    if dbapi_conn.total_changes != info.get(_CHANGES, dbapi_conn.total_changes):
        return  # something already wrote (so the lock is held): never commit half a transaction
    if dbapi_conn.in_transaction:
        dbapi_conn.execute("COMMIT")
    dbapi_conn.execute("BEGIN IMMEDIATE")


def _sqlite_claim_on_write(conn, cursor, statement, parameters, context, executemany) -> None:
    if conn.info.get(_LOCKED, True):
        return
    for_update = context is not None and getattr(
        getattr(context.compiled, "statement", None), "_for_update_arg", None
    )
    if for_update is not None or _WRITE_STATEMENT.match(statement):
        _upgrade(cursor.connection, conn.info)


def claim_write_lock(conn: Connection) -> None:
    """Take the database's write lock now, for a transaction that reads what it is about to write
    (a chain head, a counter) and must not interleave with another writer. SQLite: upgrades the
    transaction to IMMEDIATE; other databases lock rows themselves (FOR UPDATE, advisory locks)."""
    if conn.dialect.name != "sqlite":
        return
    if not conn.in_transaction():
        conn.begin()
    if not conn.info.get(_LOCKED, True):
        _upgrade(conn.connection.dbapi_connection, conn.info)


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
        event.listen(engine, "before_cursor_execute", _sqlite_claim_on_write)

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
