"""The Upstox stub (market + orders + OAuth blueprints) on 127.0.0.1, and an adapter pointed at it."""

from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from backend.domain.broker.order_limits import LocalOrderWindows
from backend.domain.broker.upstox import TokenBucket, UpstoxBroker, UpstoxSettings
from backend.domain.market.instruments import InstrumentRegistry, seed_instruments
from tests.stubs.upstox_orders_stub import book_of
from tests.stubs.upstox_stub import StubState, create_stub_app

REG = InstrumentRegistry(seed_instruments())


@pytest.fixture
def upstox_stub():
    state = StubState()
    for sym in ("RELIANCE", "TCS", "INFY"):
        ins = REG.by_symbol(sym)
        state.add(ins.instrument_key, sym, ltp=1000.0, prev_close=990.0)
    server = make_server("127.0.0.1", 0, create_stub_app(state), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", state
    finally:
        book_of(state).release.set()
        server.shutdown()
        thread.join(timeout=5)


class FakeTime:
    """A manual clock for the token bucket: ``sleep`` advances it and records the waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time():
    return FakeTime()


@pytest.fixture
def make_broker(upstox_stub, fake_time):
    base, state = upstox_stub

    def _make(token: str = "test-token", windows=None, **overrides) -> UpstoxBroker:
        cfg = dict(
            base_url=base,
            order_base_url=base,
            connect_timeout=2.0,
            read_timeout=2.0,
            algo_name="test-algo",
            breaker_fail_max=3,
            breaker_reset_seconds=30.0,
            retry_attempts=3,
            retry_wait_initial=0.0,
            retry_wait_max=0.0,
            order_rate_per_second=5.0,
            order_burst=5,
        )
        cfg.update(overrides)
        settings = UpstoxSettings(**cfg)
        bucket = TokenBucket(
            settings.order_rate_per_second, settings.order_burst, clock=fake_time.clock, sleep=fake_time.sleep
        )
        return UpstoxBroker(
            token_provider=lambda account: token,
            instruments=REG,
            settings=settings,
            bucket=bucket,
            sleep=fake_time.sleep,
            order_windows=windows or LocalOrderWindows(clock=fake_time.clock),
        )

    return _make
