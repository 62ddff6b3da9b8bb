"""gunicorn settings and hooks for ``make serve`` (``gunicorn -c config/gunicorn.py wsgi:app``).

Command-line flags still win (workers, threads and bind come from the Makefile's environment).

With ``PROMETHEUS_MULTIPROC_DIR`` set every worker writes its metrics to files there and /metrics sums
them (backend/observability/metrics.py). Stale files from a previous run would be summed too, so the
master empties the directory before it forks; a dead worker's live gauges (Socket.IO connections,
pool connections) are removed when it exits so they stop counting.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

# gthread, with gunicorn's own errors (over-long request line, oversized headers) in the JSON
# envelope instead of an HTML page (backend/serving.py).
worker_class = "backend.serving.EnvelopeThreadWorker"
# gunicorn's maximum (default 4,094): 500 symbols still do not fit, so long lists go to POST /quotes.
limit_request_line = 8190
# No access log: gunicorn's prints raw query strings (OAuth codes); the app logs a redacted line.
accesslog = None
# SIGTERM: stop accepting, finish in-flight requests for up to this many seconds, then exit.
graceful_timeout = 30


def _multiproc_dir() -> Path | None:
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(value) if value else None


def on_starting(server: Any) -> None:
    path = _multiproc_dir()
    if path is None:
        return
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


def worker_exit(server: Any, worker: Any) -> None:
    """In the worker, after its in-flight requests finished: stop the background services (feed,
    alerts, deployments, job pool, schedulers) so their threads end and the worker exits 0."""
    from backend.lifecycle import shutdown_all

    shutdown_all()


def child_exit(server: Any, worker: Any) -> None:
    if _multiproc_dir() is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
