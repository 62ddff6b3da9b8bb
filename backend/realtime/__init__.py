"""Real-time: the live feed, the tick bus and the Socket.IO ``/live`` namespace.

Interfaces for other domains:

* ticks:  ``from backend.realtime.bus import tick_bus; tick_bus.subscribe(callback, symbols=None)``
* users:  ``from backend.realtime import emit_to_user; emit_to_user(user_id, "order_update", {...})``
  works from any worker, CLI command or background process (through the Redis message queue
  when ``REDIS_URL`` is set).
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from flask import Flask

from backend.extensions import socketio
from backend.realtime.live import NAMESPACE, LiveNamespace, quote_room, user_room

log = logging.getLogger(__name__)
_live_namespace: LiveNamespace | None = None

__all__ = [
    "disconnect_room",
    "emit_batch",
    "emit_to_user",
    "emit_quote_room",
    "init_app",
    "user_room",
    "quote_room",
    "NAMESPACE",
]


def emit_to_user(user_id: int, event: str, payload: Any) -> None:
    """Send ``event`` to every connection of ``user_id`` (room ``user:{id}`` on ``/live``)."""
    socketio.emit(event, payload, to=user_room(user_id), namespace=NAMESPACE)


def disconnect_room(room: str) -> None:
    """Disconnect every ``/live`` connection in ``room`` on every worker (credential revoked)."""
    server = socketio.server
    if server is None:
        return
    manager = server.manager
    if hasattr(manager, "disconnect_room"):
        manager.disconnect_room(room, NAMESPACE)
    else:  # one process, no message queue
        from backend.realtime.live import disconnect_local

        disconnect_local(server, room)


def emit_batch() -> AbstractContextManager[None]:
    """Emits inside this block reach the other servers as one queue message (see ``pubsub``)."""
    batch = getattr(getattr(socketio.server, "manager", None), "batch", None)
    return batch() if batch is not None else nullcontext()


def emit_quote_room(symbol: str, event: str, payload: Any) -> None:
    socketio.emit(event, payload, to=quote_room(symbol), namespace=NAMESPACE)


def _should_autostart(app: Flask) -> bool:
    setting = app.config.get("FEED_AUTOSTART")
    if setting is not None:
        return bool(setting)
    if app.config.get("TESTING"):
        return False
    # `flask db upgrade`, `flask instruments load`...: one-shot commands never run the feed.
    prog = os.path.basename(sys.argv[0]) if sys.argv else ""
    return not (prog == "flask" and (len(sys.argv) < 2 or sys.argv[1] != "run"))


def init_app(app: Flask) -> None:
    """Register the ``/live`` namespace and start the feed service when configured to."""
    global _live_namespace
    if _live_namespace is None:
        _live_namespace = LiveNamespace(NAMESPACE)
        socketio.on_namespace(_live_namespace)
    elif NAMESPACE not in socketio.server.namespace_handlers:
        # Flask-SocketIO builds a new server on every init_app (one per app: the test suite makes
        # several) and only replays namespaces registered before the first server existed.
        socketio.server.register_namespace(_live_namespace)
    from backend.realtime.feed import get_feed

    feed = get_feed(app)
    if _should_autostart(app):
        feed.start()
        from backend.lifecycle import on_shutdown

        on_shutdown(app, "feed", feed.stop)
