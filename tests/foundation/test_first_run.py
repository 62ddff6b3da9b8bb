"""A first run as a new user sees it (issue 17): quiet one-shot commands, .env read, `/` leads to the docs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.executable).with_name("flask"))


def _run(args, tmp_path, **env):
    full = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TEST_", "DATABASE_URL", "REDIS_URL", "APP_ENV", "FLASK_"))
    }
    full.update(
        {
            "FLASK_APP": "wsgi",
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": f"sqlite:///{tmp_path}/first.db",
            **env,
        }
    )
    return subprocess.run([FLASK, *args], cwd=tmp_path, env=full, capture_output=True, text=True, timeout=240)


def test_db_upgrade_on_an_empty_database_starts_no_background_work(tmp_path):
    (tmp_path / "wsgi.py").write_text((ROOT / "wsgi.py").read_text())
    result = _run(["db", "upgrade"], tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "Traceback" not in out
    for noise in (
        "job recovery",
        "deployment resume",
        "reconciliation on start",
        " ERROR ",
        " WARNING ",
        '"ERROR"',
        '"WARNING"',
    ):
        assert noise not in out, out


def test_dotenv_is_read_at_start_up(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("RATELIMIT_ORDERS=7 per minute\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RATELIMIT_ORDERS", raising=False)
    from backend import _load_dotenv

    _load_dotenv()
    try:
        assert os.environ["RATELIMIT_ORDERS"] == "7 per minute"
    finally:
        os.environ.pop("RATELIMIT_ORDERS", None)


def test_root_serves_the_dashboard(client):
    r = client.get("/")
    assert r.status_code == 200 and r.mimetype == "text/html"
    assert client.get("/api/docs").status_code == 200
