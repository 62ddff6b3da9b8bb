"""TradingView UDF endpoints: exact protocol shapes, field by field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

BASE = "/api/v1/market-data/udf"
# 2024-01-02 00:00 UTC .. 2024-01-05 23:59 UTC
FROM, TO = 1704153600, 1704499199


@pytest.fixture
def h(trader):
    return trader[1]


@pytest.fixture
def sim(app):
    with app.app_context():
        from backend.services import market_data as md

        return md.provider()


def test_requires_auth(client):
    for p in ("/config", "/symbols?symbol=SBIN", "/search?query=S", "/history?symbol=SBIN", "/time"):
        assert client.get(BASE + p).status_code == 401


def test_config_shape(client, h):
    body = client.get(f"{BASE}/config", headers=h).get_json()
    assert body["supported_resolutions"] == ["1", "5", "15", "60", "1D"]
    assert body["supports_search"] is True
    assert body["supports_group_request"] is False
    assert body["supports_time"] is True
    assert body["supports_marks"] is False and body["supports_timescale_marks"] is False
    assert {"value": "NSE", "name": "NSE", "desc": "National Stock Exchange of India"} in body["exchanges"]
    assert {"name": "All types", "value": ""} in body["symbols_types"]


def test_symbols_shape_equity_tick_005(client, h):
    body = client.get(f"{BASE}/symbols?symbol=NSE:RELIANCE", headers=h).get_json()
    assert body["name"] == "RELIANCE" and body["ticker"] == "RELIANCE"
    assert body["description"] == "RELIANCE INDUSTRIES LTD"
    assert body["type"] == "stock"
    assert body["session"] == "0915-1530"
    assert body["timezone"] == "Asia/Kolkata"
    assert body["exchange"] == "NSE" and body["listed_exchange"] == "NSE"
    # tick 0.05 -> minmov / pricescale = 5 / 100
    assert body["minmov"] == 5 and body["pricescale"] == 100
    assert body["has_intraday"] is True and body["has_daily"] is True
    assert body["supported_resolutions"] == ["1", "5", "15", "60", "1D"]
    assert body["volume_precision"] == 0
    assert "20251225" in body["session_holidays"].split(",")


def test_symbols_tick_001_and_index(client, h):
    body = client.get(f"{BASE}/symbols?symbol=NHPC", headers=h).get_json()  # price < 250: tick 0.01
    assert (body["minmov"], body["pricescale"]) == (1, 100)
    body = client.get(f"{BASE}/symbols?symbol=NIFTY", headers=h).get_json()
    assert body["type"] == "index" and body["has_no_volume"] is True


def test_symbols_unknown_and_missing(client, h):
    r = client.get(f"{BASE}/symbols?symbol=NOPE", headers=h)
    assert r.status_code == 200
    assert r.get_json() == {"s": "error", "errmsg": "unknown symbol NOPE"}
    body = client.get(f"{BASE}/symbols", headers=h).get_json()
    assert body["s"] == "error" and "symbol" in body["errmsg"]


def test_search_shape_and_filters(client, h):
    items = client.get(f"{BASE}/search?query=INF&limit=5", headers=h).get_json()
    assert items == [
        {
            "symbol": "INFY",
            "full_name": "NSE:INFY",
            "description": "INFOSYS LIMITED",
            "exchange": "NSE",
            "ticker": "INFY",
            "type": "stock",
        }
    ]
    idx = client.get(f"{BASE}/search?query=&type=index", headers=h).get_json()
    assert {i["symbol"] for i in idx} == {"NIFTY", "BANKNIFTY"}
    opts = client.get(f"{BASE}/search?query=BANKNIFTY&type=option&limit=4", headers=h).get_json()
    assert len(opts) == 4 and all(o["type"] == "option" for o in opts)
    assert client.get(f"{BASE}/search?query=INF&exchange=BSE", headers=h).get_json() == []


def test_history_ok_shape_matches_candles(client, h, sim):
    body = client.get(f"{BASE}/history?symbol=SBIN&resolution=1D&from={FROM}&to={TO}", headers=h).get_json()
    assert set(body) == {"s", "t", "o", "h", "l", "c", "v"}
    assert body["s"] == "ok"
    expected = sim.candles("SBIN", "1d", datetime.fromtimestamp(FROM, UTC), datetime.fromtimestamp(TO, UTC))
    assert len(expected) == 4
    assert body["t"] == [int(b.ts.timestamp()) for b in expected]
    assert body["o"] == [float(b.open) for b in expected]
    assert body["h"] == [float(b.high) for b in expected]
    assert body["l"] == [float(b.low) for b in expected]
    assert body["c"] == [float(b.close) for b in expected]
    assert body["v"] == [b.volume for b in expected]
    assert all(isinstance(t, int) for t in body["t"])


def test_history_countback_takes_precedence_over_from(client, h, sim):
    # from == to: without countback that is one bar at most; countback asks for 30 ending at 'to'.
    body = client.get(
        f"{BASE}/history?symbol=TCS&resolution=5&from={TO}&to={TO}&countback=30", headers=h
    ).get_json()
    assert body["s"] == "ok" and len(body["t"]) == 30
    expected = sim.candles("TCS", "5m", datetime(2024, 1, 5, tzinfo=UTC), datetime.fromtimestamp(TO, UTC))
    assert body["t"] == [int(b.ts.timestamp()) for b in expected[-30:]]
    assert body["t"] == sorted(body["t"])


def test_history_no_data_with_next_time(client, h, sim):
    # Saturday 2024-01-06 .. Sunday 2024-01-07: no bars; nextTime = Friday's bar.
    sat, sun = 1704499200, 1704671999
    body = client.get(f"{BASE}/history?symbol=SBIN&resolution=1D&from={sat}&to={sun}", headers=h).get_json()
    friday = sim.candles("SBIN", "1d", datetime(2024, 1, 5, tzinfo=UTC), datetime(2024, 1, 5, 23, tzinfo=UTC))
    assert body == {"s": "no_data", "nextTime": int(friday[0].ts.timestamp())}


def test_history_no_data_without_earlier_bars(client, h):
    body = client.get(f"{BASE}/history?symbol=SBIN&resolution=1D&from=0&to=86400", headers=h).get_json()
    assert body == {"s": "no_data"}


@pytest.mark.parametrize(
    "query",
    [
        "symbol=SBIN&resolution=7&from=1&to=2",
        "symbol=SBIN&resolution=1D&from=abc&to=2",
        "symbol=SBIN&resolution=1D",
        "symbol=SBIN&resolution=1D&from=10&to=5",
    ],
)
def test_history_bad_input_is_udf_error(client, h, query):
    body = client.get(f"{BASE}/history?{query}", headers=h).get_json()
    assert body["s"] == "error" and body["errmsg"]
    assert set(body) == {"s", "errmsg"}


def test_history_unknown_symbol(client, h):
    body = client.get(f"{BASE}/history?symbol=NOPE&resolution=1D&from={FROM}&to={TO}", headers=h).get_json()
    assert body == {"s": "error", "errmsg": "unknown symbol NOPE"}


def test_time_is_plain_unix_seconds(client, h):
    before = int(datetime.now(UTC).timestamp())
    r = client.get(f"{BASE}/time", headers=h)
    assert r.mimetype == "text/plain"
    value = int(r.get_data(as_text=True))
    assert before <= value <= before + 5
