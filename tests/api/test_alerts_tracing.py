"""Tracing is optional: without OTEL_EXPORTER_OTLP_ENDPOINT nothing from opentelemetry is imported."""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import sys
    from backend import create_app
    app = create_app({"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": "sqlite://", "REDIS_URL": None,
                      "LOG_LEVEL": "ERROR", "OTEL_EXPORTER_OTLP_ENDPOINT": %r})
    print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
    print("tracing" in app.extensions)
    """
)


def _run(endpoint):
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT % (endpoint,)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-2:]


def test_nothing_imported_without_endpoint():
    assert _run(None) == ["[]", "False"]


def test_endpoint_without_packages_degrades_quietly(monkeypatch):
    from backend.observability import tracing

    if tracing.tracing_available():  # the extra is installed here: covered by the enabled path
        return
    assert _run("http://127.0.0.1:4318") == ["[]", "False"]
