"""A trader writes options on product D (NRML): the margin `analyze` shows is what `place` blocks,
and closing the position releases it. Runs on the simulated market's NIFTY chain."""

from __future__ import annotations

from decimal import Decimal

from tests.api.test_options_basket import _expiry, options_trading  # noqa: F401 - fixture
from tests.services.trading_support import check_invariants

D = Decimal


def _summary(client, h) -> dict:
    return client.get("/api/v1/portfolio", headers=h).get_json()


def test_short_strangle_on_nrml_blocks_the_analyzed_margin_and_releases_it_on_exit(
    app,
    client,
    trader,
    options_trading,  # noqa: F811
):
    _, h = trader
    params = {"underlying": "NIFTY", "expiry": _expiry(app)}
    # 1. the trader looks at the structure first
    r = client.post("/api/v1/strategies/options/short_strangle/analyze", json={"params": params}, headers=h)
    assert r.status_code == 200, r.get_json()
    shown = r.get_json()
    margin = D(shown["margin"])
    spot = D(shown["spot"])
    qty = shown["legs"][0]["quantity"]
    # never under the exchange's short option minimum (3% of notional per uncovered short) + exposure
    assert margin >= D("0.05") * spot * qty * 2
    before = _summary(client, h)
    assert D(before["margin_used"]) == 0
    # 2. places it on the default product D (NRML): no longer refused as a "delivery short"
    r = client.post("/api/v1/strategies/options/short_strangle/place", json={"params": params}, headers=h)
    assert r.status_code == 201, r.get_json()
    ids = r.get_json()["order_ids"]
    orders = [client.get(f"/api/v1/orders/{i}", headers=h).get_json() for i in ids]
    assert [(o["status"], o["product"], o["side"]) for o in orders] == [("filled", "D", "SELL")] * 2
    blocked = D(_summary(client, h)["margin_used"])
    assert abs(blocked - margin) <= margin / 100, (blocked, margin)  # analyze == place within 1%
    assert sum(D(o["margin"]) for o in orders) == blocked
    check_invariants(app, orders[0]["account_id"])
    # 3. buying both legs back releases the margin
    for o in orders:
        r = client.post(
            "/api/v1/orders",
            json={"symbol": o["symbol"], "side": "BUY", "type": "MARKET", "product": "D",
                  "quantity": o["quantity"]},
            headers=h,
        )  # fmt: skip
        assert r.status_code == 201, r.get_json()
        assert D(r.get_json()["margin"]) == 0  # a pure reduction needs no margin
    assert D(_summary(client, h)["margin_used"]) == 0


def test_iron_condor_basket_gets_the_defined_risk_margin(app, client, trader, options_trading):  # noqa: F811
    _, h = trader
    params = {"underlying": "NIFTY", "expiry": _expiry(app)}
    condor = client.post(
        "/api/v1/strategies/options/iron_condor/analyze", json={"params": params}, headers=h
    ).get_json()
    strangle = client.post(
        "/api/v1/strategies/options/short_strangle/analyze",
        json={"params": {**params, "offset": 2}},
        headers=h,
    ).get_json()
    # the same two shorts, hedged by wings: a fraction of the naked margin, nothing left uncovered
    assert D(condor["margin"]) < D(strangle["margin"]) / 2
    assert condor["margin_detail"]["exposure"] == "0.00"
    r = client.post("/api/v1/strategies/options/iron_condor/place", json={"params": params}, headers=h)
    assert r.status_code == 201, r.get_json()
    blocked = D(_summary(client, h)["margin_used"])
    assert abs(blocked - D(condor["margin"])) <= D(condor["margin"]) / 100
