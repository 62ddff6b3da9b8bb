"""REST endpoints of the market-data namespace, including bad input."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from backend.domain.market.simulated import SimulatedProvider

BASE = "/api/v1/market-data"


@pytest.fixture
def h(trader):
    return trader[1]


@pytest.fixture
def reference(app):
    """The simulated provider configured exactly like the app's (same seed)."""
    with app.app_context():
        from backend.services import market_data as md

        return md.provider()


def test_every_endpoint_requires_authentication(client):
    for path in (
        "/quotes?symbols=SBIN",
        "/ltp?symbols=SBIN",
        "/candles/SBIN",
        "/option-chain/NIFTY",
        "/option-chain/NIFTY/analytics",
        "/instruments",
        "/market-status",
        "/indicators/SBIN?name=sma",
        "/udf/config",
        "/udf/time",
    ):
        r = client.get(BASE + path)
        assert r.status_code == 401, path
        assert r.get_json()["error"]["code"] == "UNAUTHORIZED"


def test_quotes_batch_returns_requested_symbols_in_order(client, h):
    r = client.get(f"{BASE}/quotes?symbols=TCS,reliance,NIFTY,TCS", headers=h)
    assert r.status_code == 200
    items = r.get_json()["items"]
    assert [q["symbol"] for q in items] == ["TCS", "RELIANCE", "NIFTY"]
    rel = items[1]
    assert rel["instrument_key"] == "NSE_EQ|INE002A01018"
    assert Decimal(rel["bid"]) < Decimal(rel["ask"])
    assert Decimal(rel["low"]) <= Decimal(rel["ltp"]) <= Decimal(rel["high"])
    # Money is a string, never a float.
    assert isinstance(rel["ltp"], str)


def test_quotes_unknown_symbol_is_404_naming_it(client, h):
    r = client.get(f"{BASE}/quotes?symbols=RELIANCE,NOPE,ZZZ", headers=h)
    assert r.status_code == 404
    err = r.get_json()["error"]
    assert err["code"] == "UNKNOWN_SYMBOL"
    assert err["details"]["symbols"] == ["NOPE", "ZZZ"]
    assert "NOPE" in err["message"]


def test_quotes_limits(client, h):
    assert client.get(f"{BASE}/quotes", headers=h).status_code == 422
    many = ",".join(f"S{i}" for i in range(501))
    r = client.get(f"{BASE}/quotes?symbols={many}", headers=h)
    assert r.status_code == 422
    assert "symbols" in r.get_json()["error"]["details"]["fields"]


def test_ltp_matches_provider(client, h, app, reference):
    r = client.get(f"{BASE}/ltp?symbols=SBIN,INFY", headers=h)
    assert r.status_code == 200
    got = {i["symbol"]: Decimal(i["ltp"]) for i in r.get_json()["items"]}
    assert set(got) == {"SBIN", "INFY"}
    # Ticks move within the second; the cached value equals the provider's price then.
    with app.app_context():
        expected = reference.ltp(["SBIN"])["SBIN"]
    assert abs(got["SBIN"] - expected) / expected < Decimal("0.01")


def test_candles_daily_match_the_simulated_provider(client, h, reference):
    r = client.get(f"{BASE}/candles/RELIANCE?interval=1d&from=2024-01-01&to=2024-01-10", headers=h)
    assert r.status_code == 200
    body = r.get_json()
    assert body["symbol"] == "RELIANCE" and body["interval"] == "1d"
    start = datetime(2023, 12, 31, 18, 30, tzinfo=UTC)
    end = datetime(2024, 1, 10, 18, 29, 59, tzinfo=UTC)
    expected = reference.candles("RELIANCE", "1d", start, end)
    assert len(body["candles"]) == len(expected) == 8  # Jan 1-10 2024: 8 weekdays
    for got, exp in zip(body["candles"], expected, strict=True):
        assert datetime.fromisoformat(got["ts"]) == exp.ts
        assert Decimal(got["open"]) == exp.open and Decimal(got["close"]) == exp.close
        assert Decimal(got["high"]) == exp.high and Decimal(got["low"]) == exp.low
        assert got["volume"] == exp.volume


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("interval=2m", "interval"),
        ("interval=1m&from=2024-01-01&to=2024-03-01", "from"),
        ("interval=1h&from=2023-01-01&to=2024-01-01", "from"),
        ("interval=1d&from=2000-01-01&to=2024-01-01", "from"),
        ("interval=1d&from=yesterday", "from"),
        ("interval=1d&from=2024-02-30", "from"),
        ("interval=1d&from=2024-02-01&to=2024-01-01", "to"),
    ],
)
def test_candles_bad_input_is_422_naming_the_field(client, h, query, field):
    r = client.get(f"{BASE}/candles/RELIANCE?{query}", headers=h)
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["error"]["details"]["fields"]


def test_candles_unknown_symbol(client, h):
    r = client.get(f"{BASE}/candles/NOSUCH?interval=1d&from=2024-01-01&to=2024-01-10", headers=h)
    assert r.status_code == 404
    assert r.get_json()["error"]["details"]["symbols"] == ["NOSUCH"]


def test_option_chain_has_greeks_and_pcr(client, h):
    r = client.get(f"{BASE}/option-chain/NIFTY", headers=h)
    assert r.status_code == 200
    body = r.get_json()
    assert body["underlying"] == "NIFTY" and body["lot_size"] == 65  # the January 2026 series on
    assert body["expiry"] == body["expiries"][0]
    strikes = [Decimal(row["strike"]) for row in body["rows"]]
    assert strikes == sorted(strikes) and len(strikes) >= 41
    call_oi = sum(row["call"]["oi"] for row in body["rows"] if row["call"])
    put_oi = sum(row["put"]["oi"] for row in body["rows"] if row["put"])
    assert body["pcr"] == pytest.approx(put_oi / call_oi)
    leg = body["rows"][len(body["rows"]) // 2]["call"]
    assert set(leg) >= {"ltp", "bid", "ask", "iv", "delta", "gamma", "theta", "vega", "oi", "volume"}
    assert 0.0 <= leg["delta"] <= 1.0


def test_option_chain_bad_expiry_and_symbol(client, h):
    r = client.get(f"{BASE}/option-chain/NIFTY?expiry=2001-01-01", headers=h)
    assert r.status_code == 404 and "2001-01-01" in r.get_json()["error"]["message"]
    assert client.get(f"{BASE}/option-chain/NIFTY?expiry=soon", headers=h).status_code == 422
    r = client.get(f"{BASE}/option-chain/NOPE", headers=h)
    assert r.status_code == 404 and r.get_json()["error"]["details"]["symbols"] == ["NOPE"]


def test_option_chain_analytics_consistent_with_chain(client, h):
    chain = client.get(f"{BASE}/option-chain/BANKNIFTY", headers=h).get_json()
    r = client.get(f"{BASE}/option-chain/BANKNIFTY/analytics?expiry={chain['expiry']}", headers=h)
    assert r.status_code == 200
    a = r.get_json()
    call_oi = sum(row["call"]["oi"] for row in chain["rows"] if row["call"])
    put_oi = sum(row["put"]["oi"] for row in chain["rows"] if row["put"])
    assert a["total_call_oi"] == call_oi and a["total_put_oi"] == put_oi
    assert a["pcr_oi"] == pytest.approx(put_oi / call_oi)
    assert Decimal(a["max_pain"]) in {Decimal(row["strike"]) for row in chain["rows"]}
    spot = Decimal(a["spot"])
    nearest = min((Decimal(row["strike"]) for row in chain["rows"]), key=lambda k: (abs(k - spot), k))
    assert Decimal(a["atm_strike"]) == nearest


def test_instruments_search_prefix_type_and_paging(client, h):
    r = client.get(f"{BASE}/instruments?q=hdfc", headers=h)
    assert [i["trading_symbol"] for i in r.get_json()["items"]] == ["HDFCBANK"]
    r = client.get(f"{BASE}/instruments?q=tata", headers=h)  # name prefix: TATA CONSULTANCY, TATA STEEL
    assert {i["trading_symbol"] for i in r.get_json()["items"]} == {"TCS", "TATASTEEL"}
    r = client.get(f"{BASE}/instruments?type=INDEX", headers=h)
    idx = r.get_json()["items"]
    assert {i["trading_symbol"] for i in idx} == {"NIFTY", "BANKNIFTY"}
    nifty = next(i for i in idx if i["trading_symbol"] == "NIFTY")
    assert nifty["lot_size"] == 65 and nifty["tick_size"] == "0.05" and nifty["freeze_quantity"] == 1800
    first = client.get(f"{BASE}/instruments?type=EQ&limit=10", headers=h).get_json()
    assert len(first["items"]) == 10 and first["next_cursor"]
    second = client.get(
        f"{BASE}/instruments?type=EQ&limit=10&cursor={first['next_cursor']}", headers=h
    ).get_json()
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in second["items"]}
    r = client.get(f"{BASE}/instruments?type=CE&q=NIFTY&limit=1", headers=h).get_json()["items"][0]
    assert r["instrument_type"] == "CE" and r["expiry"] and r["strike"] and r["underlying"] == "NIFTY"


def test_instruments_bad_input(client, h):
    assert client.get(f"{BASE}/instruments?type=BOND", headers=h).status_code == 422
    assert client.get(f"{BASE}/instruments?limit=0", headers=h).status_code == 422
    assert client.get(f"{BASE}/instruments?cursor=!!!", headers=h).status_code == 422


def test_market_status_in_ist(client, h, app):
    r = client.get(f"{BASE}/market-status", headers=h)
    assert r.status_code == 200
    body = r.get_json()
    assert body["timezone"] == "Asia/Kolkata"
    assert body["next_open"].endswith("09:15:00+05:30") and body["next_close"].endswith("15:30:00+05:30")
    with app.app_context():
        from backend.services import market_data as md

        expected = md.market_status()
    assert body["is_open"] is expected.is_open and body["reason"] == expected.reason


def test_market_status_calendar_reference_times(app):
    from backend.services import market_data as md

    with app.app_context():
        # Thursday 2024-01-04 10:00 IST = 04:30 UTC: open. Saturday: weekend. Holiday from config.
        assert md.market_status(datetime(2024, 1, 4, 4, 30, tzinfo=UTC)).is_open
        assert md.market_status(datetime(2024, 1, 6, 4, 30, tzinfo=UTC)).reason == "weekend"
        assert md.market_status(datetime(2025, 12, 25, 5, 0, tzinfo=UTC)).reason == "holiday"


def test_indicators_sma_matches_hand_computation(client, h):
    q = "interval=1d&from=2024-01-01&to=2024-02-15"
    candles = client.get(f"{BASE}/candles/INFY?{q}", headers=h).get_json()["candles"]
    r = client.get(f"{BASE}/indicators/INFY?name=sma&period=5&{q}", headers=h)
    assert r.status_code == 200
    body = r.get_json()
    assert body["params"] == {"period": 5}
    values = body["values"]["sma"]
    closes = [float(c["close"]) for c in candles]
    assert values[:4] == [None] * 4
    for i in range(4, len(closes)):
        assert values[i] == pytest.approx(sum(closes[i - 4 : i + 1]) / 5, rel=1e-12)


@pytest.mark.parametrize("name", ["ema", "rsi", "macd", "bollinger", "vwap", "atr"])
def test_indicators_every_name(client, h, name):
    r = client.get(f"{BASE}/indicators/SBIN?name={name}&interval=1d&from=2024-01-01&to=2024-06-01", headers=h)
    assert r.status_code == 200
    body = r.get_json()
    assert all(len(v) == len(body["ts"]) for v in body["values"].values())
    expected_keys = {"macd": {"macd", "signal", "hist"}, "bollinger": {"mid", "upper", "lower"}}
    assert set(body["values"]) == expected_keys.get(name, {name})
    assert body["values"][next(iter(body["values"]))][-1] is not None


def test_indicators_bad_input(client, h):
    assert client.get(f"{BASE}/indicators/SBIN?name=foo", headers=h).status_code == 422
    assert client.get(f"{BASE}/indicators/SBIN", headers=h).status_code == 422
    r = client.get(f"{BASE}/indicators/SBIN?name=macd&fast=30&slow=10&interval=1d", headers=h)
    assert r.status_code == 422
    assert client.get(f"{BASE}/indicators/NOPE?name=sma", headers=h).status_code == 404


def test_api_key_with_read_scope_can_read(client, trader):
    _, h = trader
    key = client.post("/api/v1/auth/api-keys", json={"name": "bot", "scopes": ["read"]}, headers=h).get_json()
    r = client.get(f"{BASE}/ltp?symbols=SBIN", headers={"X-API-Key": key["key"]})
    assert r.status_code == 200


def test_simulated_reference_is_the_default_provider(app):
    with app.app_context():
        from backend.services import market_data as md

        assert isinstance(md.provider(), SimulatedProvider)
