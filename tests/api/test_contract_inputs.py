"""Issue 17, the API contract: input the server must refuse with a 422 (never a 500, never stored).

Each test reproduces one finding of the fuzzing report through the client, on both databases.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from marshmallow import Schema, fields

from backend.api.common import _schema_instance

BIG = 2**31  # one past an INTEGER column
HUGE = 9223372036854775808  # one past a BIGINT


def _fields_of(resp) -> dict:
    body = resp.get_json()
    assert resp.status_code == 422, body
    assert body["error"]["code"] == "VALIDATION_ERROR"
    fields_ = body["error"]["details"]["fields"]
    assert all(isinstance(v, list | dict) for v in fields_.values()), fields_
    return fields_


# --- integers beyond the column's range --------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/alerts/{BIG}",
        f"/api/v1/orders/{BIG}",
        f"/api/v1/orders/{HUGE}/trades",
        f"/api/v1/strategies/{BIG}",
        f"/api/v1/portfolio/accounts/{BIG}",
        f"/api/v1/auth/api-keys/{HUGE}",
    ],
)
def test_path_ids_beyond_int32_are_404(client, trader, path):
    _, h = trader
    method = "delete" if "api-keys" in path else "get"
    resp = getattr(client, method)(path, headers=h)
    assert resp.status_code == 404
    assert set(resp.get_json()) == {"error"}


@pytest.mark.parametrize(
    "url",
    [
        f"/api/v1/orders?account_id={HUGE}",
        f"/api/v1/portfolio/positions?account_id={HUGE}",
        f"/api/v1/alerts/history?rule_id={BIG}",
        f"/api/v1/analytics/performance?account_id={HUGE}",
    ],
)
def test_query_integers_beyond_the_column_are_422(client, trader, url):
    _, h = trader
    f = _fields_of(client.get(url, headers=h))
    assert set(f) <= {"account_id", "rule_id"} and f


def test_body_integer_beyond_the_column_is_422(client, trader):
    _, h = trader
    body = {"symbol": "SBIN", "side": "BUY", "type": "MARKET", "quantity": 1, "account_id": HUGE}
    assert "account_id" in _fields_of(client.post("/api/v1/orders/preview", json=body, headers=h))


# --- decimals beyond the column's precision ---------------------------------------------------


@pytest.mark.parametrize("price", ["1e30", "1e400", 1e30, "34350139172327748", "0.00001", "1e-30", "NaN"])
def test_preview_price_beyond_numeric_20_4_is_422(client, trader, price):
    _, h = trader
    body = {"symbol": "SBIN", "side": "BUY", "type": "LIMIT", "quantity": 1, "price": price}
    assert "price" in _fields_of(client.post("/api/v1/orders/preview", json=body, headers=h))


def test_modify_with_1e400_and_huge_sl_m_trigger_are_422(client, trader):
    _, h = trader
    assert "price" in _fields_of(client.patch("/api/v1/orders/1", json={"price": "1e400"}, headers=h))
    body = {
        "symbol": "SBIN",
        "side": "SELL",
        "type": "SL-M",
        "quantity": 1,
        "trigger_price": "34350139172327748",
    }
    assert "trigger_price" in _fields_of(client.post("/api/v1/orders", json=body, headers=h))


def test_stop_of_1e_minus_30_is_refused(client, trader):
    _, h = trader
    resp = client.put("/api/v1/portfolio/positions/SBIN/stops", json={"stop_loss": "1e-30"}, headers=h)
    assert "stop_loss" in _fields_of(resp)


def test_alert_level_of_1e400_and_unknown_symbol_are_refused(client, trader):
    _, h = trader
    body = {"symbol": "SBIN", "kind": "price_above", "params": {"level": "1e400"}}
    assert "params" in _fields_of(client.post("/api/v1/alerts", json=body, headers=h))
    body = {"symbol": "NOPE_XYZ", "kind": "price_above", "params": {"level": "100"}}
    assert _fields_of(client.post("/api/v1/alerts", json=body, headers=h))["symbol"]
    ok = client.post("/api/v1/alerts", json={**body, "symbol": "SBIN"}, headers=h)
    assert ok.status_code == 201, ok.get_json()
    moved = client.patch(f"/api/v1/alerts/{ok.get_json()['id']}", json={"symbol": "NOPE_XYZ"}, headers=h)
    assert "symbol" in _fields_of(moved)
    assert client.get(f"/api/v1/alerts/{ok.get_json()['id']}", headers=h).get_json()["symbol"] == "SBIN"


# --- strict integers and booleans --------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"cooldown_seconds": "1"}, "cooldown_seconds"),
        ({"cooldown_seconds": 1.5}, "cooldown_seconds"),
        ({"cooldown_seconds": True}, "cooldown_seconds"),
        ({"recurring": 0}, "recurring"),
        ({"recurring": "true"}, "recurring"),
        ({"recurring": 1}, "recurring"),
    ],
)
def test_alert_integers_and_booleans_are_strict(client, trader, extra, field):
    _, h = trader
    body = {"symbol": "SBIN", "kind": "price_above", "params": {"level": "800"}, **extra}
    assert field in _fields_of(client.post("/api/v1/alerts", json=body, headers=h))


def test_snapshot_account_id_as_string_is_422(client, trader):
    _, h = trader
    assert "account_id" in _fields_of(
        client.post("/api/v1/analytics/snapshots", json={"account_id": "1"}, headers=h)
    )


def test_query_booleans_take_true_or_false_only(client, trader):
    _, h = trader
    assert client.get("/api/v1/strategies?include_deleted=true", headers=h).status_code == 200
    assert "include_deleted" in _fields_of(client.get("/api/v1/strategies?include_deleted=yes", headers=h))


# --- unknown query parameters -----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/portfolio/positions?account=3",
        "/api/v1/analytics/performance?account=3",
        "/api/v1/orders?colour=red",
        "/api/v1/portfolio?account=3",
        "/api/v1/auth/me?x=1",
    ],
)
def test_unknown_query_parameters_are_422_naming_them(client, trader, url):
    _, h = trader
    name = url.split("?")[1].split("=")[0]
    assert _fields_of(client.get(url, headers=h)) == {name: ["Unknown parameter."]}


def test_analytics_takes_account_id(client, trader):
    _, h = trader
    acct = client.get("/api/v1/portfolio/accounts", headers=h).get_json()[0]["id"]
    resp = client.get(f"/api/v1/analytics/performance?account_id={acct}", headers=h)
    assert resp.status_code == 200, resp.get_json()


# --- ?fields= and text no column can store ----------------------------------------------------


@pytest.mark.parametrize("value", ["a.b", "id.x", "symbol.name,id"])
def test_dotted_fields_selection_is_422(client, trader, value):
    _, h = trader
    assert _fields_of(client.get(f"/api/v1/alerts?fields={value}", headers=h))["fields"]


def test_fields_selection_still_works(client, trader):
    _, h = trader
    client.post(
        "/api/v1/alerts", json={"symbol": "SBIN", "kind": "price_above", "params": {"level": "8"}}, headers=h
    )
    items = client.get("/api/v1/alerts?fields=id,symbol", headers=h).get_json()["items"]
    assert items and set(items[0]) == {"id", "symbol"}


def test_nul_bytes_are_422_on_query_path_and_body(client, trader, app):
    _, h = trader
    assert "symbol" in _fields_of(client.get("/api/v1/orders?symbol=A%00B", headers=h))
    assert "symbol" in _fields_of(client.get("/api/v1/market-data/candles/A%00B", headers=h))
    body = {"symbol": "SBIN", "kind": "price_above", "params": {"level": "800"}, "name": "a\x00b"}
    assert "name" in _fields_of(client.post("/api/v1/alerts", json=body, headers=h))
    body = {"symbol": "SBIN", "kind": "price_above", "params": {"level": "800", "note": "x\x00"}}
    assert "params.note" in _fields_of(client.post("/api/v1/alerts", json=body, headers=h))
    assert client.get("/api/v1/alerts", headers=h).get_json()["items"] == []


# a lone surrogate in a JSON body: tests/api/test_hostile_input.py (400 at the body parser, nothing stored)


# --- what the server sends --------------------------------------------------------------------


def test_timestamps_are_timezone_aware(client, trader):
    _, h = trader
    created = client.post(
        "/api/v1/alerts", json={"symbol": "SBIN", "kind": "price_above", "params": {"level": "8"}}, headers=h
    ).get_json()
    for key in ("created_at", "updated_at"):
        assert datetime.fromisoformat(created[key]).tzinfo is not None, created[key]
    me = client.get("/api/v1/auth/me", headers=h).get_json()
    stamps = [v for k, v in me.items() if k.endswith("_at") and v]
    assert stamps and all(datetime.fromisoformat(v).tzinfo is not None for v in stamps)


class _Out(Schema):
    price = fields.Decimal(as_string=True)
    at = fields.DateTime()


def test_decimals_never_in_exponent_form_and_naive_datetimes_get_utc():
    out = _schema_instance(_Out, False, None).dump(
        {"price": Decimal("1E-30"), "at": datetime(2026, 1, 2, 3, 4, 5)}
    )
    assert out["price"] == "0.000000000000000000000000000001"
    assert out["at"] == "2026-01-02T03:04:05+00:00"
    assert _schema_instance(_Out, False, None).dump({"price": Decimal("3.145E+4")})["price"] == "31450"


# --- 500 symbols do not fit a request line ----------------------------------------------------


def test_post_quotes_and_ltp_take_500_symbols_in_a_body(client, trader, app):
    _, h = trader
    with app.app_context():
        from sqlalchemy import select

        from backend.extensions import db
        from backend.models.market import Instrument

        symbols = db.session.scalars(
            select(Instrument.trading_symbol).order_by(Instrument.id).limit(500)
        ).all()
    assert len(symbols) == 500
    assert len("GET /api/v1/market-data/quotes?symbols=" + ",".join(symbols)) > 8190  # no URL takes it
    for path in ("quotes", "ltp"):
        resp = client.post(f"/api/v1/market-data/{path}", json={"symbols": symbols}, headers=h)
        assert resp.status_code == 200, resp.get_json()
        assert len(resp.get_json()["items"]) == 500
    too_many = client.post("/api/v1/market-data/quotes", json={"symbols": symbols + ["SBIN"]}, headers=h)
    assert "symbols" in _fields_of(too_many)


def test_the_documented_order_and_alert_examples_work(client, trader):
    _, h = trader
    doc = client.get("/api/swagger.json").get_json()["definitions"]
    alert = client.post("/api/v1/alerts", json=doc["AlertRuleCreate"]["example"], headers=h)
    assert alert.status_code == 201, alert.get_json()
    preview = client.post("/api/v1/orders/preview", json=doc["OrderPreview"]["example"], headers=h)
    assert preview.status_code == 200, preview.get_json()
