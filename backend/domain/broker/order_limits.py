"""Per-user order-write limits shared by every worker and machine (Upstox counts per user, not per process).

Upstox allows order writes (place / modify / cancel) per user at 10 per second, 500 per minute and
2,000 per 30 minutes (Upstox developer docs, "Rate limiting", order APIs; the figures issue 14 quotes),
and answers 429 ``UDAPI10005`` without a Retry-After when a window is exceeded. Each window is a sliding
log: a write may go when every window has room; otherwise the caller learns how long until the oldest
entry of the fullest window expires.

``RedisOrderWindows`` keeps the logs in Redis sorted sets and decides in one Lua script (atomic across
workers, timed by the Redis server's clock so machines with skewed clocks agree). ``LocalOrderWindows``
is the in-process fallback when there is no Redis (one worker). Both also hold a per-user cool-down set
after a 429, so every worker backs off, not only the one that was refused.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Window:
    limit: int
    seconds: float


# Upstox order-API limits per user (see the module docstring).
UPSTOX_ORDER_WINDOWS: tuple[Window, ...] = (Window(10, 1.0), Window(500, 60.0), Window(2000, 1800.0))


class OrderWindows(Protocol):
    def try_acquire(self, user: str) -> float:
        """Take one slot for ``user``: 0.0 when taken, else the seconds until one may be free."""
        ...

    def cool_down(self, user: str, seconds: float) -> None:
        """After a 429: no write of ``user`` goes for ``seconds`` (every worker sees it)."""
        ...


class LocalOrderWindows:
    """In-process sliding logs (the fallback without Redis; exact for a single worker)."""

    def __init__(
        self, windows: tuple[Window, ...] = UPSTOX_ORDER_WINDOWS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.windows = windows
        self.clock = clock
        self._logs: dict[str, list[deque[float]]] = {}
        self._cool: dict[str, float] = {}
        self._lock = threading.Lock()

    def try_acquire(self, user: str) -> float:
        with self._lock:
            now = self.clock()
            until = self._cool.get(user, 0.0)
            if until > now:
                return until - now
            logs = self._logs.setdefault(user, [deque() for _ in self.windows])
            wait = 0.0
            for w, log in zip(self.windows, logs, strict=True):
                while log and log[0] <= now - w.seconds:
                    log.popleft()
                if len(log) >= w.limit:
                    wait = max(wait, log[0] + w.seconds - now)
            if wait > 0:
                return wait
            for log in logs:
                log.append(now)
            return 0.0

    def cool_down(self, user: str, seconds: float) -> None:
        with self._lock:
            self._cool[user] = max(self._cool.get(user, 0.0), self.clock() + seconds)


# KEYS: cool-down key, then one sorted set per window. ARGV: member, then (limit, window_ms) pairs.
# Returns 0 when a slot was taken, else the milliseconds to wait.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cool = redis.call('PTTL', KEYS[1])
if cool > 0 then return cool end
local wait = 0
for i = 2, #KEYS do
  local limit = tonumber(ARGV[2 * i - 2])
  local win = tonumber(ARGV[2 * i - 1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - win)
  if redis.call('ZCARD', KEYS[i]) >= limit then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    local w = tonumber(oldest[2]) + win - now
    if w > wait then wait = w end
  end
end
if wait > 0 then return wait end
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], now, ARGV[1] .. ':' .. i)
  redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[2 * i - 1]))
end
return 0
"""


class RedisOrderWindows:
    """The same windows in Redis, shared by every worker and machine using ``client``."""

    def __init__(
        self, client: Any, windows: tuple[Window, ...] = UPSTOX_ORDER_WINDOWS, prefix: str = "tp:upstox:ow"
    ) -> None:
        self.client = client
        self.windows = windows
        self.prefix = prefix
        self._script = client.register_script(_ACQUIRE)

    def _keys(self, user: str) -> list[str]:
        return [f"{self.prefix}:{user}:cool"] + [
            f"{self.prefix}:{user}:{int(w.seconds)}s" for w in self.windows
        ]

    def try_acquire(self, user: str) -> float:
        args: list[Any] = [uuid.uuid4().hex]
        for w in self.windows:
            args += [w.limit, int(w.seconds * 1000)]
        waited_ms = int(self._script(keys=self._keys(user), args=args))
        return waited_ms / 1000.0

    def cool_down(self, user: str, seconds: float) -> None:
        ms = max(1, int(seconds * 1000))
        key = self._keys(user)[0]
        # keep the longer of an existing and the new cool-down
        current = self.client.pttl(key)
        if current is None or int(current) < ms:
            self.client.set(key, "1", px=ms)


class FallbackOrderWindows:
    """Redis windows, falling back to in-process ones while Redis cannot be reached (logged)."""

    def __init__(self, primary: OrderWindows, fallback: OrderWindows, log: Any = None) -> None:
        self.primary, self.fallback, self.log = primary, fallback, log

    def try_acquire(self, user: str) -> float:
        try:
            return self.primary.try_acquire(user)
        except Exception:  # noqa: BLE001 - a Redis outage must not stop order flow; limits go per process
            if self.log is not None:
                self.log.warning("order windows: Redis unavailable, using in-process windows", exc_info=True)
            return self.fallback.try_acquire(user)

    def cool_down(self, user: str, seconds: float) -> None:
        self.fallback.cool_down(user, seconds)
        try:
            self.primary.cool_down(user, seconds)
        except Exception:  # noqa: BLE001 - see try_acquire
            if self.log is not None:
                self.log.warning("order windows: Redis unavailable for the cool-down", exc_info=True)
