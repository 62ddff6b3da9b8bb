"""Socket.IO's Redis message queue, with emits batched per unit of work.

python-socketio publishes every emit as its own Redis message, and every server process decodes every
message. An order that fills emits ``order_update``, ``fill`` and ``position_update``: three publishes
and, with four gunicorn workers, twelve decodes. Inside ``batch()`` the emits of one thread are
collected and published as one ``batch`` message when the block ends; each listener unpacks it into
the ordinary ``emit`` messages, so delivery and ordering are unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import socketio

BATCH = "batch"
DISCONNECT_ROOM = "disconnect_room"


class BatchingRedisManager(socketio.RedisManager):
    """``socketio.RedisManager`` whose publishes inside ``batch()`` go out as one message."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._local = threading.local()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Collect this thread's publishes until the block ends (nested blocks join the outer one)."""
        if getattr(self._local, "buffer", None) is not None:
            yield
            return
        self._local.buffer = []
        try:
            yield
        finally:
            buffer, self._local.buffer = self._local.buffer, None
            if len(buffer) == 1:
                super()._publish(buffer[0])
            elif buffer:
                super()._publish({"method": BATCH, "host_id": self.host_id, "messages": buffer})

    def _publish(self, data: dict) -> Any:
        buffer = getattr(self._local, "buffer", None)
        if buffer is None:
            return super()._publish(data)
        buffer.append(data)
        return None

    def disconnect_room(self, room: str, namespace: str) -> None:
        """Disconnect everyone in ``room`` on every server (a revoked credential's connections)."""
        from backend.realtime.live import disconnect_local

        disconnect_local(self.server, room, namespace)
        self._publish(
            {"method": DISCONNECT_ROOM, "host_id": self.host_id, "room": room, "namespace": namespace}
        )

    def _listen(self) -> Iterator[Any]:
        for message in super()._listen():
            yield from self.unpack(message)

    def unpack(self, message: Any) -> Iterator[Any]:
        """The messages a raw queue message stands for: a batch's members, or the message itself."""
        try:
            data = message if isinstance(message, dict) else self.json.loads(message)
        except ValueError:
            yield message  # not ours to judge: the listener skips what it cannot decode
            return
        if isinstance(data, dict) and data.get("method") == DISCONNECT_ROOM:
            if data.get("host_id") != self.host_id:
                from backend.realtime.live import disconnect_local

                disconnect_local(self.server, str(data.get("room")), str(data.get("namespace")))
            return
        if not isinstance(data, dict) or data.get("method") != BATCH:
            yield data
        elif data.get("host_id") != self.host_id:  # this host handled its own emits when it sent them
            yield from (m for m in data.get("messages") or [] if isinstance(m, dict))
