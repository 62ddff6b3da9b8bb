"""A small TTL cache shared by every domain: Redis when configured, else a bounded in-process LRU.

Use it through :func:`get_cache` (one instance per app)::

    from backend.services.cache import get_cache
    cache = get_cache()
    quote = cache.get_or_set("quote:RELIANCE", load, ttl=1.0)
    found = cache.get_many(["ltp:SBIN", "ltp:TCS"])        # {key: value} for the hits only
    cache.set_many({"ltp:SBIN": Decimal("812.35")}, ttl=5)

Keys are strings; their first ``:``-separated segment is the *namespace* used for the hit/miss
statistics (``stats()``) and for ``flush(namespace)``. Values may be JSON scalars, lists, dicts,
``Decimal``, ``datetime`` and ``date``: the Redis backend stores a tagged JSON encoding (never
pickle, so a compromised Redis cannot run code here), the in-process one keeps the objects.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import Flask, current_app

log = logging.getLogger(__name__)

_MISSING = object()
PREFIX = "cache:"


# --------------------------------------------------------------------------- encoding


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"__dec": str(value)}
    if isinstance(value, datetime):
        return {"__dt": value.isoformat()}
    if isinstance(value, date):
        return {"__date": value.isoformat()}
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"cache cannot store {type(value).__name__}")


def _hook(obj: dict) -> Any:
    if len(obj) == 1:
        if "__dec" in obj:
            return Decimal(obj["__dec"])
        if "__dt" in obj:
            return datetime.fromisoformat(obj["__dt"])
        if "__date" in obj:
            return date.fromisoformat(obj["__date"])
    return obj


def encode(value: Any) -> bytes:
    return json.dumps(value, default=_default, separators=(",", ":")).encode()


def decode(raw: bytes | str) -> Any:
    return json.loads(raw, object_hook=_hook)


# --------------------------------------------------------------------------- statistics


class _Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hits: dict[str, int] = defaultdict(int)
        self.misses: dict[str, int] = defaultdict(int)

    @staticmethod
    def namespace(key: str) -> str:
        return key.split(":", 1)[0]

    def record(self, key: str, hit: bool) -> None:
        with self._lock:
            (self.hits if hit else self.misses)[self.namespace(key)] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            names = sorted(set(self.hits) | set(self.misses))
            per = {}
            for n in names:
                h, m = self.hits[n], self.misses[n]
                per[n] = {"hits": h, "misses": m, "hit_ratio": h / (h + m) if h + m else None}
            th, tm = sum(self.hits.values()), sum(self.misses.values())
            return {
                "hits": th,
                "misses": tm,
                "hit_ratio": th / (th + tm) if th + tm else None,
                "namespaces": per,
            }

    def reset(self) -> None:
        with self._lock:
            self.hits.clear()
            self.misses.clear()


# --------------------------------------------------------------------------- backends


class Cache:
    """Interface and shared behaviour; subclasses implement the ``_raw_*`` storage methods."""

    backend = "abstract"

    def __init__(self) -> None:
        self._stats = _Stats()

    # storage primitives -------------------------------------------------------------
    def _raw_get_many(self, keys: list[str]) -> dict[str, Any]:
        raise NotImplementedError

    def _raw_set_many(self, items: dict[str, Any], ttl: float) -> None:
        raise NotImplementedError

    def delete(self, *keys: str) -> None:
        raise NotImplementedError

    def flush(self, namespace: str | None = None) -> int:
        """Remove every entry (or those of ``namespace``); returns how many were removed."""
        raise NotImplementedError

    def size(self) -> int:
        raise NotImplementedError

    # public API -------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        found = self.get_many([key])
        return found.get(key, default)

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The cached values of ``keys`` (misses are absent). One round trip on Redis."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        try:
            found = self._raw_get_many(keys)
        except Exception:  # noqa: BLE001 - a cache outage degrades to misses, never to errors
            log.warning("cache read failed", exc_info=True)
            found = {}
        for k in keys:
            self._stats.record(k, k in found)
        return found

    def set(self, key: str, value: Any, ttl: float) -> None:
        self.set_many({key: value}, ttl)

    def set_many(self, items: dict[str, Any], ttl: float) -> None:
        if not items or ttl <= 0:
            return
        try:
            self._raw_set_many(items, ttl)
        except Exception:  # noqa: BLE001 - see get_many
            log.warning("cache write failed", exc_info=True)

    def get_or_set(self, key: str, loader: Callable[[], Any], ttl: float) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            value = loader()
            self.set(key, value, ttl)
        return value

    def stats(self) -> dict[str, Any]:
        """Hit/miss counters of this process per namespace, plus backend and size."""
        snap = self._stats.snapshot()
        snap["backend"] = self.backend
        try:
            snap["entries"] = self.size()
        except Exception:  # noqa: BLE001 - stats must render even when Redis is down
            snap["entries"] = None
        return snap

    def reset_stats(self) -> None:
        self._stats.reset()


class MemoryCache(Cache):
    """Thread-safe LRU bounded by ``max_entries``, with a per-entry expiry (monotonic clock)."""

    backend = "memory"

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.max_entries = max(1, int(max_entries))
        self._clock = clock
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def _raw_get_many(self, keys: list[str]) -> dict[str, Any]:
        now = self._clock()
        out: dict[str, Any] = {}
        with self._lock:
            for k in keys:
                entry = self._data.get(k)
                if entry is None:
                    continue
                if entry[0] <= now:
                    del self._data[k]
                    continue
                self._data.move_to_end(k)
                out[k] = entry[1]
        return out

    def _raw_set_many(self, items: dict[str, Any], ttl: float) -> None:
        expires = self._clock() + ttl
        with self._lock:
            for k, v in items.items():
                self._data[k] = (expires, v)
                self._data.move_to_end(k)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def delete(self, *keys: str) -> None:
        with self._lock:
            for k in keys:
                self._data.pop(k, None)

    def flush(self, namespace: str | None = None) -> int:
        with self._lock:
            if namespace is None:
                n = len(self._data)
                self._data.clear()
                return n
            doomed = [k for k in self._data if k.split(":", 1)[0] == namespace]
            for k in doomed:
                del self._data[k]
            return len(doomed)

    def size(self) -> int:
        with self._lock:
            return len(self._data)


class RedisCache(Cache):
    """Entries under ``cache:<key>`` with Redis expiry; bounded by Redis's own maxmemory policy."""

    backend = "redis"

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client

    def _raw_get_many(self, keys: list[str]) -> dict[str, Any]:
        raw = self.client.mget([PREFIX + k for k in keys])
        return {k: decode(v) for k, v in zip(keys, raw, strict=True) if v is not None}

    def _raw_set_many(self, items: dict[str, Any], ttl: float) -> None:
        ms = max(1, int(ttl * 1000))
        pipe = self.client.pipeline(transaction=False)
        for k, v in items.items():
            pipe.set(PREFIX + k, encode(v), px=ms)
        pipe.execute()

    def delete(self, *keys: str) -> None:
        if keys:
            self.client.delete(*[PREFIX + k for k in keys])

    def flush(self, namespace: str | None = None) -> int:
        pattern = f"{PREFIX}{namespace}:*" if namespace else f"{PREFIX}*"
        removed = 0
        batch: list[bytes] = []
        for key in self.client.scan_iter(match=pattern, count=500):
            batch.append(key)
            if len(batch) >= 500:
                removed += self.client.delete(*batch)
                batch = []
        if batch:
            removed += self.client.delete(*batch)
        return removed

    def size(self) -> int:
        return sum(1 for _ in self.client.scan_iter(match=f"{PREFIX}*", count=1000))


def init_cache(app: Flask) -> Cache:
    """Build the app's cache (Redis when ``REDIS_URL`` is set) and store it in ``app.extensions``."""
    from backend.extensions import redis_store

    if redis_store.client is not None:
        cache: Cache = RedisCache(redis_store.client)
    else:
        cache = MemoryCache(app.config.get("CACHE_MAX_ENTRIES", 10_000))
    app.extensions["cache"] = cache
    return cache


def get_cache(app: Flask | None = None) -> Cache:
    """The current app's cache (created on first use)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    cache = app.extensions.get("cache")
    return cache if cache is not None else init_cache(app)
