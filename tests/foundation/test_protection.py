"""Rate-limit storage fallback and slow-query logging."""

import json
import os
import subprocess
import sys
from pathlib import Path

from backend import create_app
from tests.conftest import app_config

_FALLBACK_SCRIPT = """
import json, os
from backend import create_app
from tests.conftest import app_config
app = create_app(app_config(REDIS_URL=None, RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0",
                            RATELIMIT_LOGIN="3 per minute", SQLALCHEMY_DATABASE_URI="sqlite://"))
with app.app_context():
    from flask_migrate import upgrade
    upgrade()
client = app.test_client()
body = {"email": "nobody@example.com", "password": "whatever-long"}
print(json.dumps([client.post("/api/v1/auth/login", json=body).status_code for _ in range(5)]))
"""


def test_limiter_falls_back_to_memory_when_redis_is_gone():
    # Nothing listens on port 1: every Redis call fails, the limiter must keep limiting in memory.
    # A separate process, because the limiter extension is one object per process.
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", _FALLBACK_SCRIPT],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(root), "LOG_LEVEL": "ERROR"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    statuses = json.loads(out.stdout.strip().splitlines()[-1])
    assert 500 not in statuses
    assert statuses[:3] == [401, 401, 401] and statuses[-1] == 429


def test_slow_queries_are_logged_with_request_id(capsys):
    from backend.observability.logging import configure_logging

    app = create_app(app_config(SLOW_QUERY_MS=0.0))
    configure_logging("WARNING", True)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
    app.test_client().get("/health/ready", headers={"X-Request-ID": "slow-1"})
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    slow = [x for x in lines if x.get("message") == "slow query" and x.get("request_id") == "slow-1"]
    assert any("SELECT 1" in x["statement"] for x in slow)
    assert all(isinstance(x["duration_ms"], float) and x["duration_ms"] >= 0 for x in slow)
