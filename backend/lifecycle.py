"""Graceful shutdown of the background services (issue 17: SIGTERM must stop the feed, alerts,
deployments and the job pool cleanly, and let in-flight requests finish).

Each service registers how it stops when it starts (:func:`on_shutdown`). :func:`shutdown_all`
stops them in the order they started (the feed, the source of ticks, first), each once, logging
``background service stopped`` per service. It is called by gunicorn's ``worker_exit`` hook
(config/gunicorn.py: after the worker has finished its in-flight requests) and by
``python -m backend`` on SIGTERM/SIGINT, which counts in-flight requests with :class:`InFlight`.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

log = logging.getLogger("backend.lifecycle")
_EXT = "shutdown_hooks"
_apps: weakref.WeakSet[Flask] = weakref.WeakSet()
_lock = threading.Lock()


def on_shutdown(app: Flask, name: str, stop: Callable[[], Any]) -> None:
    """Register ``stop`` to run once at shutdown, named ``name`` in the log."""
    with _lock:
        hooks = app.extensions.setdefault(_EXT, [])
        hooks[:] = [(n, f) for n, f in hooks if n != name]  # a restarted service replaces its hook
        hooks.append((name, stop))
        _apps.add(app)


def registered(app: Flask) -> list[str]:
    return [name for name, _ in app.extensions.get(_EXT, [])]


def shutdown(app: Flask) -> list[str]:
    """Stop every registered service of ``app`` in start order; returns the names stopped."""
    with _lock:
        hooks = list(app.extensions.get(_EXT, []))
        app.extensions[_EXT] = []
    stopped: list[str] = []
    for name, stop in hooks:
        try:
            stop()
        except Exception:  # noqa: BLE001 - one service failing to stop must not keep the others up
            log.exception("background service failed to stop", extra={"service": name})
            continue
        stopped.append(name)
        log.info("background service stopped", extra={"service": name})
    return stopped


def shutdown_all() -> list[str]:
    """Stop the services of every app of this process (gunicorn hooks know no app object)."""
    stopped: list[str] = []
    for app in list(_apps):
        stopped += shutdown(app)
    return stopped


def join_threads(threads: Iterable[threading.Thread], timeout: float) -> None:
    """Wait for ``threads`` to end, ``timeout`` seconds in all."""
    deadline = time.monotonic() + timeout
    for t in threads:
        if t is not threading.current_thread():
            t.join(max(0.0, deadline - time.monotonic()))


class InFlight:
    """WSGI middleware counting requests being served, so a server that stops can wait for them."""

    def __init__(self, wsgi_app: Callable) -> None:
        self.wsgi_app = wsgi_app
        self.count = 0
        self._cond = threading.Condition()

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        if environ.get("PATH_INFO", "").startswith("/socket.io"):
            return self.wsgi_app(environ, start_response)  # live connections are not "in flight"
        with self._cond:
            self.count += 1
        try:
            return self.wsgi_app(environ, start_response)
        finally:
            with self._cond:
                self.count -= 1
                self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Block until no request is in flight (True) or ``timeout`` passed (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self.count == 0, timeout)
