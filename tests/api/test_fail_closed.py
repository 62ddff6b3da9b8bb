"""Redis or the database unreachable: 503 with Retry-After, never 500 and never a token accepted
unchecked; a success stays a success when the rate limiter's storage fails afterwards (issue 17)."""

import redis
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import text

from backend.extensions import db, redis_store
from tests.conftest import USING_POSTGRES
from tests.services import trading_support
from tests.services.trading_support import order_body

market = trading_support.market  # shared fixture


def test_redis_down_answers_503_with_retry_after(client, trader, monkeypatch):
    _, headers = trader
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    monkeypatch.setattr(redis_store, "client", dead)
    r = client.get("/api/v1/auth/me", headers=headers)
    assert r.status_code == 503
    assert r.get_json()["error"]["code"] == "DEPENDENCY_UNAVAILABLE"
    assert r.get_json()["error"]["details"] == {"dependency": "redis"}
    assert int(r.headers["Retry-After"]) > 0


def test_rate_limit_storage_failing_after_commit_keeps_the_201(client, trader, market, monkeypatch):
    _, headers = trader

    def broken(*args, **kwargs):
        raise redis.exceptions.ConnectionError("Redis went away mid-burst")

    # The headers read the window after the view committed; the hit itself has already happened.
    monkeypatch.setattr(MovingWindowRateLimiter, "get_window_stats", broken)
    r = client.post("/api/v1/orders", json=order_body(), headers=headers)
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["status"] == "filled"


def test_database_unreachable_answers_503(app, client, trader, monkeypatch):
    _, headers = trader
    from sqlalchemy.exc import OperationalError

    def down(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(db.session, "get", down)
    r = client.get("/api/v1/auth/me", headers=headers)
    assert r.status_code == 503 and r.headers["Retry-After"]
    assert r.get_json()["error"]["details"] == {"dependency": "database"}


def test_pool_recovers_after_postgres_drops_every_connection(app, client, trader):
    _, headers = trader
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    if USING_POSTGRES:
        # what a PostgreSQL restart does to the pool's idle connections
        with app.app_context(), db.engine.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
    answers = [client.get("/api/v1/auth/me", headers=headers).status_code for _ in range(5)]
    assert set(answers) <= {200, 503} and answers[-1] == 200
