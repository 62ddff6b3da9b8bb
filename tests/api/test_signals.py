"""Signals webhook end to end: mapping CRUD, token rotation, paper orders, once per alert id, HMAC,
bodies that do not match their mapping, listing and isolation between users."""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal

from tests.services import trading_support

market = trading_support.market  # shared fixture
BASE = "/api/v1/signals"


def _mapping(client, h, **kw):
    body = {
        "name": "rel-long",
        "symbol": "reliance",
        "side": "BUY",
        "quantity": 5,
        "product": "I",
        "type": "MARKET",
    }
    body.update(kw)
    return client.post(f"{BASE}/mappings", json=body, headers=h)


def _token(client, h) -> str:
    r = client.post(f"{BASE}/token/rotate", headers=h)
    assert r.status_code == 200, r.json
    return r.json["token"]


def _orders(client, h) -> list[dict]:
    return client.get("/api/v1/orders", headers=h).json["items"]


def _send(client, token, body, headers=None):
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(
        f"{BASE}/webhook/{token}", data=raw, content_type="application/json", headers=headers or {}
    )


def test_mapping_crud_and_scopes(client, trader, make_user):
    _, h = trader
    r = _mapping(client, h)
    assert r.status_code == 201, r.json
    m = r.json
    assert m["symbol"] == "RELIANCE" and m["type"] == "MARKET" and m["product"] == "I"
    assert _mapping(client, h).status_code == 422  # name unique per user
    r = client.patch(f"{BASE}/mappings/{m['id']}", json={"quantity": 7, "type": "LIMIT"}, headers=h)
    assert r.status_code == 200 and r.json["quantity"] == 7 and r.json["type"] == "LIMIT"
    r = _mapping(client, h, name="x", side="HOLD")
    assert r.status_code == 422 and "side" in r.json["error"]["details"]["fields"]
    r = _mapping(client, h, name="y", account_id=999999)
    assert r.status_code == 404
    assert [x["id"] for x in client.get(f"{BASE}/mappings", headers=h).json["items"]] == [m["id"]]
    _, viewer = make_user("viewer")
    assert client.get(f"{BASE}/mappings", headers=viewer).status_code == 200
    assert _mapping(client, viewer, name="v").status_code == 403
    assert client.delete(f"{BASE}/mappings/{m['id']}", headers=h).status_code == 204
    assert client.get(f"{BASE}/mappings/{m['id']}", headers=h).status_code == 404


def test_tradingview_alert_places_one_paper_order_per_alert_id(client, trader, market):
    _, h = trader
    assert _mapping(client, h).status_code == 201
    token = _token(client, h)
    info = client.get(f"{BASE}/token", headers=h).json
    assert info["configured"] is True and info["token"] is None  # shown once only
    alert = {"mapping": "rel-long", "alert_id": "tv-1", "ticker": "RELIANCE", "close": 1000}
    r = _send(client, token, alert)
    assert r.status_code == 201, r.json
    sig = r.json
    assert sig["status"] == "placed" and sig["source"] == "tradingview" and sig["order_status"] == "filled"
    orders = _orders(client, h)
    assert len(orders) == 1 and orders[0]["id"] == sig["order_id"]
    assert orders[0]["symbol"] == "RELIANCE" and orders[0]["quantity"] == 5 and orders[0]["product"] == "I"
    # the same alert id again: the original result, no second order
    r = _send(client, token, alert)
    assert r.status_code == 200 and r.json["id"] == sig["id"] and r.json["order_id"] == sig["order_id"]
    assert len(_orders(client, h)) == 1
    listed = client.get(BASE, headers=h).json
    assert [s["id"] for s in listed["items"]] == [sig["id"]] and listed["next_cursor"] is None


def test_old_token_stops_working_after_rotation(client, trader, market):
    _, h = trader
    _mapping(client, h)
    old = _token(client, h)
    new = _token(client, h)
    assert old != new
    r = _send(client, old, {"mapping": "rel-long", "alert_id": "a1"})
    assert r.status_code == 404 and r.json["error"]["code"] == "SIGNAL_TOKEN_UNKNOWN"
    assert _orders(client, h) == []
    assert _send(client, new, {"mapping": "rel-long", "alert_id": "a1"}).status_code == 201
    assert len(_orders(client, h)) == 1


def test_hmac_signature_required_when_configured(client, trader, market):
    _, h = trader
    _mapping(client, h)
    token = _token(client, h)
    r = client.put(f"{BASE}/hmac", json={"enabled": True}, headers=h)
    assert r.status_code == 200 and r.json["hmac_required"] is True
    secret = r.json["hmac_secret"]
    raw = json.dumps({"mapping": "rel-long", "alert_id": "s1"})
    for sig in (None, "00" * 32, hmac.new(b"wrong", raw.encode(), hashlib.sha256).hexdigest()):
        r = _send(client, token, raw, {"X-Signature": sig} if sig else {})
        assert r.status_code == 401 and r.json["error"]["code"] == "SIGNAL_BAD_SIGNATURE"
    assert _orders(client, h) == [] and client.get(BASE, headers=h).json["items"] == []
    good = hmac.new(secret.encode(), raw.encode(), hashlib.sha256).hexdigest()
    r = _send(client, token, raw, {"X-Signature": f"sha256={good}"})
    assert r.status_code == 201, r.json
    assert len(_orders(client, h)) == 1


def test_bodies_that_do_not_match_are_kept_and_place_nothing(client, trader, market, app):
    from backend.services import signals

    _, h = trader
    _mapping(client, h)
    _mapping(client, h, name="rel-limit", type="LIMIT")
    token = _token(client, h)
    before = signals.SIGNALS.labels("tradingview", "invalid")._value.get()
    cases = [
        ({"mapping": "nope", "alert_id": "b1"}, "mapping", "SIGNAL_MAPPING_UNKNOWN"),
        ({"mapping": "rel-long"}, "alert_id", "SIGNAL_BODY_MISMATCH"),
        ({"mapping": "rel-limit", "alert_id": "b2"}, "price", "SIGNAL_BODY_MISMATCH"),
        ({"mapping": "rel-long", "alert_id": "b3", "price": "abc"}, "price", "SIGNAL_BODY_MISMATCH"),
    ]
    for body, field, code in cases:
        r = _send(client, token, body)
        assert r.status_code == 422, (body, r.json)
        assert r.json["error"]["code"] == code and field in r.json["error"]["details"]["fields"]
    r = _send(client, token, "not json at all")
    assert r.status_code == 422 and "_schema" in r.json["error"]["details"]["fields"]
    assert _orders(client, h) == []
    listed = client.get(f"{BASE}?status=invalid", headers=h).json["items"]
    assert len(listed) == 5 and all(s["order_id"] is None for s in listed)
    assert signals.SIGNALS.labels("tradingview", "invalid")._value.get() - before == 4
    # a LIMIT mapping with the alert's price places a LIMIT order at that price
    r = _send(client, token, {"mapping": "rel-limit", "alert_id": "b4", "price": "990.00"})
    assert r.status_code == 201, r.json
    (order,) = _orders(client, h)
    assert (
        order["type"] == "LIMIT" and Decimal(order["price"]) == Decimal("990") and order["status"] == "open"
    )


def test_chartink_body_places_the_mapped_symbol(client, trader, market):
    _, h = trader
    _mapping(client, h, name="Volume breakout", symbol="SBIN", quantity=3)
    token = _token(client, h)
    body = {
        "stocks": "RELIANCE,SBIN",
        "trigger_prices": "1000.00,800.00",
        "triggered_at": "2:34 pm",
        "scan_name": "Volume breakout",
        "scan_url": "volume-breakout",
    }
    r = _send(client, token, body)
    assert r.status_code == 201, r.json
    assert r.json["source"] == "chartink" and r.json["alert_id"] == "chartink:Volume breakout:2:34 pm"
    assert _send(client, token, body).status_code == 200
    (order,) = _orders(client, h)
    assert order["symbol"] == "SBIN" and order["quantity"] == 3
    r = _send(client, token, {**body, "stocks": "INFY", "triggered_at": "2:40 pm"})
    assert r.status_code == 422 and "stocks" in r.json["error"]["details"]["fields"]
    assert len(_orders(client, h)) == 1


def test_risk_rejection_is_recorded_not_resent(client, trader, market):
    _, h = trader
    _mapping(client, h, name="huge", quantity=9_000_000)
    token = _token(client, h)
    r = _send(client, token, {"mapping": "huge", "alert_id": "r1"})
    assert r.status_code == 201, r.json
    assert r.json["status"] == "placed" and r.json["order_status"] == "rejected"
    assert r.json["error_code"] == "RISK_REJECTED"
    assert _send(client, token, {"mapping": "huge", "alert_id": "r1"}).status_code == 200
    assert len(_orders(client, h)) == 1


def test_users_are_isolated(client, make_user, market):
    _, h1 = make_user("trader")
    _, h2 = make_user("trader")
    m1 = _mapping(client, h1).json
    t1, t2 = _token(client, h1), _token(client, h2)
    # user 2's token cannot reach user 1's mapping by name
    r = _send(client, t2, {"mapping": "rel-long", "alert_id": "x1"})
    assert r.status_code == 422 and r.json["error"]["code"] == "SIGNAL_MAPPING_UNKNOWN"
    assert _send(client, t1, {"mapping": "rel-long", "alert_id": "x1"}).status_code == 201
    # the same alert id is independent per user (user 2's is the invalid one above)
    assert client.get(f"{BASE}/mappings/{m1['id']}", headers=h2).status_code == 404
    assert client.patch(f"{BASE}/mappings/{m1['id']}", json={"quantity": 1}, headers=h2).status_code == 404
    assert [s["status"] for s in client.get(BASE, headers=h2).json["items"]] == ["invalid"]
    assert [s["status"] for s in client.get(BASE, headers=h1).json["items"]] == ["placed"]
    assert _orders(client, h2) == [] and len(_orders(client, h1)) == 1


def test_webhook_is_rate_limited_per_token(client, trader, market, app, monkeypatch):
    _, h = trader
    token = _token(client, h)
    monkeypatch.setitem(app.config, "RATELIMIT_SIGNALS_WEBHOOK", "2 per minute")
    codes = [_send(client, token, {"mapping": "none", "alert_id": f"l{i}"}).status_code for i in range(3)]
    assert codes == [422, 422, 429]


def test_signals_are_audited(client, trader, market, app):
    from sqlalchemy import select

    from backend.extensions import db
    from backend.models import AuditLog

    _, h = trader
    _mapping(client, h)
    token = _token(client, h)
    _send(client, token, {"mapping": "rel-long", "alert_id": "au1"})
    _send(client, token, {"mapping": "zzz", "alert_id": "au2"})
    with app.app_context():
        actions = list(db.session.scalars(select(AuditLog.action).order_by(AuditLog.id)))
    assert actions[-4:] == [
        "signals.mapping.create",
        "signals.token.rotate",
        "signals.receive",
        "signals.invalid",
    ]


def test_a_racing_duplicate_is_stopped_by_the_unique_alert_id(client, trader, market, monkeypatch):
    """Two workers both see no signal for an alert id: the second insert fails, it answers the first."""
    from backend.services import signals

    _, h = trader
    _mapping(client, h)
    token = _token(client, h)
    first = _send(client, token, {"mapping": "rel-long", "alert_id": "race"}).json
    real, calls = signals._by_alert, []

    def late_view(user_id, alert_id):
        calls.append(alert_id)
        return None if len(calls) == 1 else real(user_id, alert_id)  # the pre-check misses the row

    monkeypatch.setattr(signals, "_by_alert", late_view)
    r = _send(client, token, {"mapping": "rel-long", "alert_id": "race"})
    assert r.status_code == 200 and r.json["id"] == first["id"] and len(calls) == 2
    assert len(_orders(client, h)) == 1
