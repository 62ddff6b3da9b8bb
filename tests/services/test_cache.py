"""The generic cache: TTL, LRU bound, batch calls, stats, flush, encoding (memory and Redis)."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from backend.services.cache import MemoryCache, RedisCache, decode, encode


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_memory_ttl_and_stats():
    clock = Clock()
    c = MemoryCache(max_entries=10, clock=clock)
    c.set("quote:SBIN", {"ltp": Decimal("812.35")}, ttl=1.0)
    assert c.get("quote:SBIN") == {"ltp": Decimal("812.35")}
    clock.t += 1.01
    assert c.get("quote:SBIN") is None
    s = c.stats()
    assert s["namespaces"]["quote"] == {"hits": 1, "misses": 1, "hit_ratio": 0.5}
    assert s["backend"] == "memory" and s["hits"] == 1 and s["misses"] == 1


def test_memory_lru_bound_evicts_least_recently_used():
    c = MemoryCache(max_entries=3)
    for k in "abc":
        c.set(f"x:{k}", k, ttl=60)
    assert c.get("x:a") == "a"  # a is now most recent
    c.set("x:d", "d", ttl=60)
    assert c.size() == 3
    assert c.get_many(["x:a", "x:b", "x:c", "x:d"]) == {"x:a": "a", "x:c": "c", "x:d": "d"}


def test_get_or_set_calls_loader_once():
    c = MemoryCache()
    calls = []

    def load():
        calls.append(1)
        return [1, 2]

    assert c.get_or_set("ins:X", load, ttl=10) == [1, 2]
    assert c.get_or_set("ins:X", load, ttl=10) == [1, 2]
    assert calls == [1]


def test_flush_by_namespace():
    c = MemoryCache()
    c.set_many({"ltp:A": 1, "ltp:B": 2, "quote:A": 3}, ttl=10)
    assert c.flush("ltp") == 2
    assert c.get_many(["ltp:A", "quote:A"]) == {"quote:A": 3}
    assert c.flush() == 1 and c.size() == 0


def test_encoding_round_trip_keeps_types():
    value = {
        "p": Decimal("0.05"),
        "ts": datetime(2024, 1, 2, 3, 45, tzinfo=UTC),
        "d": date(2024, 1, 30),
        "l": [1, "x", None],
        "n": {"deep": Decimal("-1.50")},
    }
    back = decode(encode(value))
    assert back == value
    assert str(back["n"]["deep"]) == "-1.50"
    with pytest.raises(TypeError):
        encode(object())


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="needs TEST_REDIS_URL")
def test_redis_backend_same_contract():
    import redis

    client = redis.Redis.from_url(os.environ["TEST_REDIS_URL"])
    c = RedisCache(client)
    c.flush()
    c.set_many({"ltp:A": Decimal("1.25"), "ltp:B": Decimal("2"), "chain:X": {"d": date(2024, 1, 1)}}, ttl=30)
    assert c.get_many(["ltp:A", "ltp:B", "ltp:C"]) == {"ltp:A": Decimal("1.25"), "ltp:B": Decimal("2")}
    assert c.get("chain:X") == {"d": date(2024, 1, 1)}
    assert 0 < client.pttl("cache:ltp:A") <= 30_000
    assert c.stats()["namespaces"]["ltp"] == {"hits": 2, "misses": 1, "hit_ratio": 2 / 3}
    assert c.flush("ltp") == 2
    assert c.get("ltp:A") is None and c.get("chain:X") is not None
    c.flush()


def test_cache_failure_degrades_to_miss():
    class Broken(MemoryCache):
        def _raw_get_many(self, keys):
            raise ConnectionError("redis down")

    c = Broken()
    assert c.get("x:y", "default") == "default"
    assert c.stats()["misses"] == 1


def test_app_uses_redis_only_when_configured(app):
    from backend.services.cache import get_cache

    with app.app_context():
        expected = "redis" if os.environ.get("TEST_REDIS_URL") else "memory"
        assert get_cache().backend == expected
