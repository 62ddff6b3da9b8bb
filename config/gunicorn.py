"""gunicorn hooks for Prometheus multiprocess mode (``make serve`` passes ``-c config/gunicorn.py``).

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


def child_exit(server: Any, worker: Any) -> None:
    if _multiproc_dir() is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
