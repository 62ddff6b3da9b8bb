"""Per-user order-write windows: 10/s, 500/min, 2,000/30 min, shared through Redis when present."""

from __future__ import annotations

import os

import pytest

from backend.domain.broker.order_limits import (
    UPSTOX_ORDER_WINDOWS,
    FallbackOrderWindows,
    LocalOrderWindows,
    RedisOrderWindows,
    Window,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_upstox_windows_are_the_documented_ones():
    assert (Window(10, 1.0), Window(500, 60.0), Window(2000, 1800.0)) == UPSTOX_ORDER_WINDOWS


def test_local_windows_enforce_every_window_per_user():
    clock = Clock()
    w = LocalOrderWindows(clock=clock)
    taken = 0
    # 2,001 writes spread at 10 per second: the 30-minute window stops the 2,001st
    for _ in range(2001):
        while (wait := w.try_acquire("u1")) > 0:
            clock.now += wait
        taken += 1
        if taken == 2000:
            first_30min_end = clock.now
    assert taken == 2001
    # the 2,001st could only go once the first write left the 30-minute window
    assert clock.now - 1000.0 >= 1800.0 and first_30min_end - 1000.0 < 1800.0
    assert w.try_acquire("someone else") == 0.0  # per user


def test_ten_per_second_then_wait():
    clock = Clock()
    w = LocalOrderWindows(clock=clock)
    assert [w.try_acquire("u") for _ in range(10)] == [0.0] * 10
    assert w.try_acquire("u") == pytest.approx(1.0)
    clock.now += 1.0
    assert w.try_acquire("u") == 0.0


def test_cool_down_blocks_until_it_ends():
    clock = Clock()
    w = LocalOrderWindows(clock=clock)
    w.cool_down("u", 2.0)
    assert w.try_acquire("u") == pytest.approx(2.0)
    clock.now += 2.0
    assert w.try_acquire("u") == 0.0


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="needs TEST_REDIS_URL")
def test_redis_windows_are_shared_between_instances():
    import redis

    client = redis.Redis.from_url(os.environ["TEST_REDIS_URL"])
    client.delete(*client.keys("tp:test-ow:*") or ["none"])
    small = (Window(3, 1.0), Window(5, 60.0))
    a = RedisOrderWindows(client, small, prefix="tp:test-ow")
    b = RedisOrderWindows(client, small, prefix="tp:test-ow")  # another worker
    assert [a.try_acquire("u"), b.try_acquire("u"), a.try_acquire("u")] == [0.0, 0.0, 0.0]
    assert b.try_acquire("u") > 0  # the 4th in the same second waits, whichever worker asks
    b.cool_down("u", 5.0)
    assert a.try_acquire("other") == 0.0
    assert 4.0 < a.try_acquire("u") <= 5.0
    client.delete(*client.keys("tp:test-ow:*") or ["none"])


def test_fallback_uses_local_windows_when_redis_fails():
    class Down:
        def try_acquire(self, user):
            raise ConnectionError("redis down")

        def cool_down(self, user, seconds):
            raise ConnectionError("redis down")

    clock = Clock()
    w = FallbackOrderWindows(Down(), LocalOrderWindows((Window(1, 1.0),), clock=clock))
    assert w.try_acquire("u") == 0.0 and w.try_acquire("u") > 0
    w.cool_down("u", 3.0)  # no raise
