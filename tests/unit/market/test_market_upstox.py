from datetime import date, datetime
from decimal import Decimal

import pytest
import requests

from backend.domain.errors import BrokerTokenExpired, RateLimited, ServiceUnavailable, ValidationFailed
from backend.domain.market.calendar import IST
from backend.domain.market.instruments import InstrumentRegistry, seed_instruments
from backend.domain.market.provider import build_provider, chain_pcr
from backend.domain.market.upstox_provider import UpstoxProvider
from tests.stubs.upstox_stub import SERVER_ERROR, TOO_MANY_REQUESTS

SYMS = ["RELIANCE", "TCS", "INFY", "SBIN", "ITC"]
REG = InstrumentRegistry(seed_instruments())


@pytest.fixture
def stub(upstox_stub):
    base, state = upstox_stub
    for i, sym in enumerate(SYMS + ["NIFTY"]):
        ins = REG.by_symbol(sym)
        state.add(ins.instrument_key, sym, ltp=1000.0 + i, prev_close=990.0 + i, volume=5000 + i)
    state.today = date(2025, 11, 20)
    return base, state


def make(base, token="test-token", **kw):
    kw.setdefault("clock", lambda: datetime(2025, 11, 20, 12, 0, tzinfo=IST))
    return UpstoxProvider(token_provider=lambda: token, instruments=REG, base_url=base, **kw)


def test_quotes_for_n_symbols_cost_one_call(stub):
    base, state = stub
    q = make(base).quotes(SYMS)
    assert set(q) == set(SYMS)
    calls = state.calls("/v2/market-quote/quotes")
    assert len(calls) == 1
    assert calls[0].args["instrument_key"].split(",") == [REG.by_symbol(s).instrument_key for s in SYMS]
    assert calls[0].headers["Authorization"] == "Bearer test-token"
    r = q["RELIANCE"]
    assert r.ltp == Decimal("1000") and r.close == Decimal("990")  # last_price - net_change
    assert r.bid == Decimal("999.95") and r.ask == Decimal("1000.05")
    assert r.volume == 5000 and r.instrument_key == "NSE_EQ|INE002A01018"


def test_batches_respect_per_call_maximum(stub):
    base, state = stub
    make(base, max_keys_per_call=2).ltp(SYMS)
    calls = state.calls("/v3/market-quote/ltp")
    assert [len(c.args["instrument_key"].split(",")) for c in calls] == [2, 2, 1]


def test_ltp_v3(stub):
    base, state = stub
    out = make(base).ltp(["TCS", "ITC", "TCS"])
    assert out == {"TCS": Decimal("1001"), "ITC": Decimal("1004")}
    assert len(state.calls("/v3/market-quote/ltp")) == 1


def test_tick_volume_is_delta_of_cumulative(stub):
    base, state = stub
    p = make(base)
    now = datetime(2025, 11, 20, 12, 0, tzinfo=IST)
    first = p.tick(["TCS"], now)[0]
    state.instruments[REG.by_symbol("TCS").instrument_key].volume += 300
    second = p.tick(["TCS"], now)[0]
    assert (first.volume, second.volume, second.cum_volume) == (0, 300, 5301)


def test_historical_candles_path_and_order(stub):
    base, state = stub
    start = datetime(2025, 11, 17, 9, 15, tzinfo=IST)
    bars = make(base).candles("RELIANCE", "5m", start, datetime(2025, 11, 18, 15, 30, tzinfo=IST))
    (call,) = state.calls("/v3/historical-candle/")
    assert call.path == "/v3/historical-candle/NSE_EQ|INE002A01018/minutes/5/2025-11-18/2025-11-17"
    assert len(bars) == 2 * 75 and bars[0].ts == start
    assert [b.ts for b in bars] == sorted(b.ts for b in bars)


def test_candles_spanning_today_use_intraday_endpoint(stub):
    base, state = stub
    bars = make(base).candles(
        "RELIANCE", "1h", datetime(2025, 11, 19, 9, 15, tzinfo=IST), datetime(2025, 11, 20, 23, tzinfo=IST)
    )
    paths = [c.path for c in state.calls("/v3/historical-candle/")]
    assert paths == [
        "/v3/historical-candle/NSE_EQ|INE002A01018/hours/1/2025-11-19/2025-11-19",
        "/v3/historical-candle/intraday/NSE_EQ|INE002A01018/hours/1",
    ]
    days = {b.ts.astimezone(IST).date() for b in bars}
    assert days == {date(2025, 11, 19), date(2025, 11, 20)}


def test_daily_candles_stamped_at_session_open(stub):
    base, _state = stub
    bars = make(base).candles(
        "TCS", "1d", datetime(2025, 11, 10, tzinfo=IST), datetime(2025, 11, 14, 23, tzinfo=IST)
    )
    assert [b.ts.astimezone(IST) for b in bars] == [
        datetime(2025, 11, d, 9, 15, tzinfo=IST) for d in range(10, 15)
    ]


def test_option_chain_and_expiries(stub):
    base, _state = stub
    p = make(base)
    chain = p.option_chain("NIFTY", date(2025, 11, 25))
    assert chain.spot == Decimal("1005") and len(chain.rows) == 3 and chain.lot_size == 75
    row = chain.row(Decimal("1005"))
    assert row.call.iv == pytest.approx(0.142) and row.put.delta == pytest.approx(-0.55)
    assert row.call.instrument_key == "NSE_FO|1002"
    assert chain_pcr(chain) == pytest.approx((3600 + 2400 + 1200) / (1000 + 2000 + 3000))
    assert p.expiries("NIFTY") == [date(2025, 11, 27), date(2025, 12, 4), date(2025, 12, 25)]


def test_401_maps_to_broker_token_expired(stub):
    base, _ = stub
    with pytest.raises(BrokerTokenExpired) as exc:
        make(base, token="stale").quotes(["TCS"])
    assert exc.value.details["upstox_error_code"] == "UDAPI100050"
    assert "Invalid token" in exc.value.message


def test_429_maps_to_rate_limited_with_retry_after(stub):
    base, state = stub
    state.fail_next(TOO_MANY_REQUESTS)
    state.retry_after = 2
    with pytest.raises(RateLimited) as exc:
        make(base).ltp(["TCS"])
    assert exc.value.details["upstox_error_code"] == "UDAPI10005" and exc.value.details["retry_after"] == 2


def test_500_maps_to_service_unavailable(stub):
    base, state = stub
    state.fail_next(SERVER_ERROR)
    with pytest.raises(ServiceUnavailable):
        make(base).quotes(["TCS"])


def test_other_4xx_maps_to_validation_with_upstox_message(stub):
    base, _ = stub
    with pytest.raises(ValidationFailed, match="Invalid Instrument key"):
        make(base).quotes(["HCLTECH"])  # known to us, unknown to the stub


def test_connection_failure_and_timeout_map_to_service_unavailable():
    s = requests.Session()
    with pytest.raises(ServiceUnavailable):
        make("http://127.0.0.1:9", session=s, timeout=1).ltp(["TCS"])

    class TimeoutSession:
        def get(self, *a, **kw):
            assert kw["timeout"] == (3.05, 10.0)
            raise requests.Timeout("read timed out")

    with pytest.raises(ServiceUnavailable, match="Timeout"):
        make("http://unused", session=TimeoutSession()).ltp(["TCS"])


def test_call_wrapper_wraps_every_call(stub):
    base, _ = stub
    seen = []

    def wrapper(fn):
        seen.append(fn)
        return fn()

    p = make(base, call_wrapper=wrapper)
    p.quotes(SYMS)
    p.ltp(["TCS"])
    assert len(seen) == 2


def test_factory_builds_upstox(stub):
    base, _ = stub
    p = build_provider("upstox", token_provider=lambda: "test-token", instruments=REG, base_url=base)
    assert isinstance(p, UpstoxProvider)
    with pytest.raises(ValidationFailed):
        build_provider("upstox")
