"""Leader election for the feed producer: one holder across every process and worker.

With Redis: ``SET key token NX PX ttl`` to acquire, a compare-and-expire Lua script as the
heartbeat, compare-and-delete to release. A holder that dies stops renewing, the key expires after
``ttl`` seconds and another contender takes over. Without Redis the same protocol runs on a
process-wide table (one process is then the whole deployment).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from typing import Any

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


def new_token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RedisLease:
    def __init__(self, client: Any, key: str, ttl: float, token: str | None = None) -> None:
        self.client, self.key, self.ttl = client, key, float(ttl)
        self.token = token or new_token()
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def acquire(self) -> bool:
        return bool(self.client.set(self.key, self.token, nx=True, px=int(self.ttl * 1000)))

    def renew(self) -> bool:
        return bool(self._renew(keys=[self.key], args=[self.token, int(self.ttl * 1000)]))

    def release(self) -> None:
        self._release(keys=[self.key], args=[self.token])

    def holder(self) -> str | None:
        raw = self.client.get(self.key)
        return raw.decode() if isinstance(raw, bytes) else raw


class LocalLease:
    """Same contract as :class:`RedisLease` on a process-wide table (tests, single process)."""

    _table: dict[str, tuple[str, float]] = {}
    _lock = threading.Lock()

    def __init__(self, key: str, ttl: float, token: str | None = None, clock=time.monotonic) -> None:
        self.key, self.ttl, self.clock = key, float(ttl), clock
        self.token = token or new_token()

    def acquire(self) -> bool:
        with self._lock:
            held = self._table.get(self.key)
            if held is not None and held[1] > self.clock() and held[0] != self.token:
                return False
            self._table[self.key] = (self.token, self.clock() + self.ttl)
            return True

    def renew(self) -> bool:
        with self._lock:
            held = self._table.get(self.key)
            if held is None or held[0] != self.token or held[1] <= self.clock():
                return False
            self._table[self.key] = (self.token, self.clock() + self.ttl)
            return True

    def release(self) -> None:
        with self._lock:
            held = self._table.get(self.key)
            if held is not None and held[0] == self.token:
                del self._table[self.key]

    def holder(self) -> str | None:
        with self._lock:
            held = self._table.get(self.key)
            return held[0] if held and held[1] > self.clock() else None


class Interest:
    """Which symbols some client wants, shared across workers (score = expiry, Unix seconds)."""

    # Without Redis the set is process-wide, like LocalLease's table.
    _local: dict[str, float] = {}
    _lock = threading.Lock()

    def __init__(self, client: Any | None, key: str = "feed:interest") -> None:
        self.client, self.key = client, key

    def touch(self, symbols: set[str] | list[str], ttl: float) -> None:
        if not symbols:
            return
        expires = time.time() + ttl
        if self.client is not None:
            self.client.zadd(self.key, {s: expires for s in symbols})
            return
        with self._lock:
            for s in symbols:
                self._local[s] = max(self._local.get(s, 0.0), expires)

    def active(self) -> set[str]:
        now = time.time()
        if self.client is not None:
            self.client.zremrangebyscore(self.key, "-inf", now)
            return {
                m.decode() if isinstance(m, bytes) else m
                for m in self.client.zrangebyscore(self.key, now, "+inf")
            }
        with self._lock:
            for s in [s for s, e in self._local.items() if e <= now]:
                del self._local[s]
            return set(self._local)
