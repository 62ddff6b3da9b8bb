"""The Upstox call seam the metrics hang on: route templates as bounded labels, and an observer that
sees every attempt, its error, and can never break the call (no app)."""

from __future__ import annotations

import pytest

from backend.domain import upstox_http
from backend.domain.errors import BrokerUnavailable
from backend.domain.upstox_http import endpoint_template, observed


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/v2/order/retrieve-all", "/v2/order/retrieve-all"),
        ("/v3/order/place", "/v3/order/place"),
        ("/v2/order/details?order_id=240108010918222", "/v2/order/details"),
        (
            "/v3/historical-candle/NSE_EQ%7CINE002A01018/days/1/2026-11-30/2026-01-01",
            "/v3/historical-candle/{instrument_key}/{unit}/{interval}/{to_date}/{from_date}",
        ),
        (
            "/v3/historical-candle/intraday/NSE_EQ%7CINE002A01018/minutes/5",
            "/v3/historical-candle/intraday/{instrument_key}/{unit}/{interval}",
        ),
        ("/v2/order/NSE_EQ|INE002A01018", "other"),  # a key or an id in a path we do not know
        ("/v2/order/240108010918222/x", "other"),
        ("https://api.upstox.com/v2/order/retrieve-all", "other"),  # a raw URL is never a label
    ],
)
def test_endpoint_templates_are_bounded(path, template):
    assert endpoint_template(path) == template


@pytest.fixture
def restore_observer():
    """The app's metrics observer is module-level state: put it back for the other tests."""
    saved = list(upstox_http._observer)
    yield
    upstox_http.set_call_observer(saved[0] if saved else None)


@pytest.fixture
def seen(restore_observer):
    calls: list[tuple] = []
    upstox_http.set_call_observer(lambda *a: calls.append(a))
    return calls


def test_observer_sees_successes_and_failures(seen):
    assert observed("broker", "GET", "/v2/order/retrieve-all", lambda: 42)() == 42

    def boom():
        raise BrokerUnavailable("down")

    with pytest.raises(BrokerUnavailable):
        observed("market_data", "GET", "/v3/market-quote/ltp", boom)()
    assert [(u, m, p, e) for u, m, p, _s, e in seen][0] == ("broker", "GET", "/v2/order/retrieve-all", None)
    upstream, method, path, seconds, error = seen[1]
    assert (upstream, method, path) == ("market_data", "GET", "/v3/market-quote/ltp")
    assert isinstance(error, BrokerUnavailable) and seconds >= 0


def test_a_failing_observer_never_breaks_the_call(restore_observer):
    def broken(*_a):
        raise RuntimeError("metrics backend exploded")

    upstox_http.set_call_observer(broken)
    assert observed("broker", "GET", "/v2/order/retrieve-all", lambda: "answer")() == "answer"
