"""``make serve`` as a subprocess (gunicorn with config/gunicorn.py on a file SQLite database).

Issue 17: SIGTERM must stop the feed, alerts, deployments and the job pool cleanly and let in-flight
requests finish; a request line over gunicorn's limit answered an HTML 414 instead of the envelope.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GRACEFUL = 30  # config/gunicorn.py's graceful_timeout
SERVICES = (
    "feed",
    "alerts",
    "deployments",
    "job pool",
    "session scheduler",
    "live-order resolver",
    "portfolio feeds",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TEST_", "DATABASE_URL", "REDIS_URL", "APP_ENV", "FLASK_", "LOG_"))
    }
    env.update(
        {
            "FLASK_APP": "wsgi:app",
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": f"sqlite:///{tmp_path}/serve.db",
            "AUDIT_ANCHOR_PATH": str(tmp_path / "anchor.json"),
            "LOG_JSON": "true",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _start(tmp_path: Path, argv: list[str]):
    """Migrate a fresh database and start ``argv`` on a free port; returns (base url, Popen, log)."""
    env = _env(tmp_path)
    done = subprocess.run(
        [str(BIN / "flask"), "db", "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stdout + done.stderr
    port = _free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [a.replace("{port}", str(port)) for a in argv],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{base}/health/live", timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        assert proc.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, "the server did not come up: " + log_path.read_text()
        time.sleep(0.2)
    return base, proc, log_path


GUNICORN = [str(BIN / "gunicorn"), "-c", "config/gunicorn.py", "--workers", "1", "--threads", "8",
            "--bind", "127.0.0.1:{port}", "wsgi:app"]  # fmt: skip
DEV_SERVER = [sys.executable, "-m", "backend", "--port", "{port}"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``make serve``: a running gunicorn. The test that stops it reads its log."""
    base, proc, log_path = _start(tmp_path_factory.mktemp("serve"), GUNICORN)
    yield base, proc, log_path
    if proc.poll() is None:
        proc.kill()
        proc.wait(30)


def _raw(base: str, data: bytes) -> bytes:
    host, port = base.rsplit("/", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _split(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def _json(base: str, method: str, path: str, body: dict | None = None, token: str | None = None):
    req = urllib.request.Request(
        f"{base}{path}", method=method, data=json.dumps(body).encode() if body else None
    )
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, json.loads(r.read())


def test_an_over_long_request_line_gets_a_json_414_envelope(server):
    base, _, _ = server
    symbols = ",".join(f"SYM{i:05d}" for i in range(1000))
    path = f"/api/v1/market-data/quotes?symbols={symbols}"
    line = f"GET {path} HTTP/1.1\r\n"
    assert len(line) > 9000
    status, headers, body = _split(_raw(base, f"{line}Host: x\r\n\r\n".encode()))
    assert status == 414
    assert headers["content-type"] == "application/json"
    err = json.loads(body)["error"]
    assert set(err) == {"code", "message", "details", "request_id"}
    assert err["code"] == "URI_TOO_LONG"
    assert err["details"] == {"limit_bytes": 8190}
    assert "POST /api/v1/market-data/quotes" in err["message"]
    assert headers["x-request-id"] == err["request_id"]


def test_a_request_line_within_the_limit_reaches_the_app(server):
    base, _, _ = server
    # 8,000 bytes: over gunicorn's default 4,094, under config/gunicorn.py's 8,190
    path = "/api/v1/market-data/quotes?symbols=" + ",".join(["RELIANCE"] * 880)
    assert 4094 < len(f"GET {path} HTTP/1.1") < 8190
    status, headers, body = _split(
        _raw(base, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    )
    assert status == 401 and json.loads(body)["error"]["code"] == "UNAUTHORIZED"  # the app's own answer


def _stop_with_a_request_in_flight(base: str, proc: subprocess.Popen, log_path: Path) -> None:
    email = "graceful@example.com"
    creds = {"email": email, "password": "correct-horse-battery"}
    assert _json(base, "POST", "/api/v1/auth/register", creds)[0] == 201
    status, tokens = _json(base, "POST", "/api/v1/auth/login", creds)
    assert status == 200
    body = json.dumps({"symbols": ["RELIANCE", "INFY"]}).encode()
    host, port = base.rsplit("/", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=GRACEFUL + 30) as s:
        # The headers and part of the body: the app is running and waits for the rest of its input.
        s.sendall(
            (
                "POST /api/v1/market-data/quotes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer {tokens['access_token']}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            + body[:10]
        )
        time.sleep(1.0)  # let the server thread start reading the body (ordering, not an assertion)
        proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)  # the server has the signal and stopped accepting; the request is still open
        assert proc.poll() is None, "the server quit with a request in flight"
        s.sendall(body[10:])
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    status, _, payload = _split(b"".join(chunks))
    assert status == 200, payload
    assert [q["symbol"] for q in json.loads(payload)["items"]] == ["RELIANCE", "INFY"]
    assert proc.wait(GRACEFUL + 15) == 0
    log = log_path.read_text()
    assert "Traceback" not in log, log
    stopped = [
        rec.get("service")
        for rec in (json.loads(line) for line in log.splitlines() if line.startswith("{"))
        if rec.get("message") == "background service stopped"
    ]
    assert sorted(stopped) == sorted(SERVICES), log
    assert stopped[0] == "feed"  # the source of ticks stops before the services it feeds


def test_sigterm_on_gunicorn_finishes_the_in_flight_request_and_stops_every_background_service(server):
    _stop_with_a_request_in_flight(*server)


def test_sigterm_on_the_development_server_does_the_same(tmp_path):
    base, proc, log_path = _start(tmp_path, DEV_SERVER)
    try:
        _stop_with_a_request_in_flight(base, proc, log_path)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
