"""Strategies API: catalog, options analyze/place, saved strategy CRUD with versions and soft delete,
and a deployment placing paper orders from feed bars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backend.domain.errors import RiskRejected
from backend.domain.market.types import Tick
from backend.domain.strategies import StrategyFactory
from backend.services import deployments, market_data, strategies

URL = "/api/v1/strategies"


class RecordingGateway(strategies.TradingGateway):
    """Stands in for the paper broker: records orders, or refuses them all when ``refuse`` is set."""

    def __init__(self, refuse: bool = False) -> None:
        self.orders: list[dict] = []
        self.baskets: list[list[dict]] = []
        self.refuse = refuse

    def place_order(self, user, order):
        if self.refuse:
            raise RiskRejected("refused", {"checks": [{"name": "max_order_value"}]})
        self.orders.append(order)
        return type("Placed", (), {"id": len(self.orders)})()

    def place_basket(self, user, legs):
        if self.refuse:
            raise RiskRejected("basket refused", {"legs": [{"leg": 0}]})
        self.baskets.append(legs)
        return [type("Placed", (), {"id": i + 1})() for i in range(len(legs))]


@pytest.fixture
def recorder(app):
    gw = RecordingGateway()
    strategies.set_gateway(app, gw)
    yield gw
    strategies.set_gateway(app, None)


def test_catalog_lists_every_registered_strategy(client, trader):
    _, headers = trader
    body = client.get(f"{URL}/catalog", headers=headers).get_json()
    assert [e["name"] for e in body["items"]] == StrategyFactory.names()
    sma = next(e for e in body["items"] if e["name"] == "sma_crossover")
    assert sma["kind"] == "signal"
    assert set(sma["params_schema"]["properties"]) >= {"fast", "slow"}
    options = client.get(f"{URL}/catalog?kind=options", headers=headers).get_json()["items"]
    assert len(options) == 8 and {e["kind"] for e in options} == {"options"}


def _expiry(app) -> str:
    with app.app_context():
        return market_data.expiries("NIFTY")[1].isoformat()  # [0] may expire today


def test_options_analyze_matches_the_domain_analysis(app, client, trader):
    _, headers = trader
    expiry = _expiry(app)
    as_of = "2026-01-05T04:00:00+00:00"
    params = {"underlying": "NIFTY", "expiry": expiry, "lots": 2}
    resp = client.post(
        f"{URL}/options/iron_condor/analyze", json={"params": params, "as_of": as_of}, headers=headers
    )
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    with app.app_context():
        chain = market_data.option_chain("NIFTY", datetime.fromisoformat(expiry).date())
        ref = StrategyFactory.create("iron_condor", params).analyse(
            chain.rows, chain.spot, chain.lot_size, as_of=datetime.fromisoformat(as_of)
        )
    expected = ref.to_dict()
    for key in ("net_premium", "max_profit", "max_loss", "breakevens", "margin", "legs", "greeks"):
        assert body[key] == expected[key], key
    assert body["lot_size"] == chain.lot_size
    assert len(body["legs"]) == 4 and all(leg["quantity"] == 2 * chain.lot_size for leg in body["legs"])
    assert len(body["chart"]["prices"]) == len(body["chart"]["expiry"]) == len(body["chart"]["today"])


def test_options_analyze_bad_input(app, client, trader):
    _, headers = trader
    expiry = _expiry(app)
    assert client.post(f"{URL}/options/nope/analyze", json={"params": {}}, headers=headers).status_code == 404
    sma = client.post(f"{URL}/options/sma_crossover/analyze", json={"params": {}}, headers=headers)
    assert sma.status_code == 422
    bad = client.post(
        f"{URL}/options/iron_condor/analyze",
        json={"params": {"underlying": "NIFTY", "expiry": expiry, "lots": 0}},
        headers=headers,
    )
    assert bad.status_code == 422 and "lots" in bad.get_json()["error"]["details"]


def test_options_place_is_one_basket_all_or_none(app, client, trader, recorder):
    _, headers = trader
    params = {"underlying": "NIFTY", "expiry": _expiry(app)}
    resp = client.post(f"{URL}/options/bull_call_spread/place", json={"params": params}, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    assert len(recorder.baskets) == 1
    legs = recorder.baskets[0]
    assert [(leg["side"], leg["type"]) for leg in legs] == [("BUY", "MARKET"), ("SELL", "MARKET")]
    assert all(leg["symbol"].startswith("NIFTY ") and leg["symbol"].split()[2] == "CE" for leg in legs)
    assert resp.get_json()["order_ids"] == [1, 2]
    recorder.refuse = True
    refused = client.post(f"{URL}/options/bull_call_spread/place", json={"params": params}, headers=headers)
    assert refused.status_code == 422 and refused.get_json()["error"]["code"] == "RISK_REJECTED"
    assert len(recorder.baskets) == 1  # nothing more was placed


def test_saved_strategy_crud_versions_and_soft_delete(client, trader, make_user):
    _, headers = trader
    body = {
        "name": "x",
        "strategy": "sma_crossover",
        "params": {"fast": 5, "slow": 20},
        "symbols": ["reliance"],
    }
    created = client.post(URL, json=body, headers=headers)
    assert created.status_code == 201, created.get_json()
    row = created.get_json()
    assert (row["version"], row["symbols"], row["params"]["fast"]) == (1, ["RELIANCE"], 5)
    sid = row["id"]
    same = client.patch(f"{URL}/{sid}", json={"name": "x"}, headers=headers).get_json()
    assert same["version"] == 1  # no change, no new version
    changed = client.patch(
        f"{URL}/{sid}", json={"params": {"fast": 8, "slow": 20}}, headers=headers
    ).get_json()
    assert changed["version"] == 2 and changed["params"]["fast"] == 8
    bad = client.patch(f"{URL}/{sid}", json={"params": {"fast": 30, "slow": 20}}, headers=headers)
    assert bad.status_code == 422
    unknown = client.post(URL, json={**body, "symbols": ["NOPE"]}, headers=headers)
    assert unknown.status_code == 404
    _, other = make_user("trader")
    assert client.get(f"{URL}/{sid}", headers=other).status_code == 404

    assert client.delete(f"{URL}/{sid}", headers=headers).status_code == 204
    assert client.get(f"{URL}/{sid}", headers=headers).status_code == 404
    assert client.get(URL, headers=headers).get_json()["items"] == []
    with_deleted = client.get(f"{URL}?include_deleted=true", headers=headers).get_json()["items"]
    assert [r["id"] for r in with_deleted] == [sid] and with_deleted[0]["deleted_at"] is not None
    versions = client.get(f"{URL}/{sid}/versions", headers=headers).get_json()["items"]
    assert [(v["version"], v["change"]) for v in versions] == [(1, "created"), (2, "updated"), (3, "deleted")]
    assert versions[0]["snapshot"]["params"]["fast"] == 5


def _ticks(symbol: str, closes: list[float], start: datetime) -> list[Tick]:
    """One tick per minute: each new minute closes the previous bar at its price."""
    out = []
    for i, px in enumerate(closes):
        p = Decimal(str(px))
        out.append(Tick(symbol, p, p, p, 10, start + timedelta(minutes=i, seconds=5)))
    return out


def test_deployment_places_tagged_orders_from_feed_bars(app, client, trader, recorder):
    _, headers = trader
    body = {
        "name": "live", "strategy": "sma_crossover", "params": {"fast": 2, "slow": 3},
        "symbols": ["RELIANCE"], "interval": "1m", "quantity": 5,
    }  # fmt: skip
    sid = client.post(URL, json=body, headers=headers).get_json()["id"]
    resp = client.post(f"{URL}/{sid}/deploy", json={}, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    dep_id = resp.get_json()["id"]
    assert client.post(f"{URL}/{sid}/deploy", json={}, headers=headers).status_code == 409
    engine = deployments.engine(app)
    engine.live[dep_id].history["RELIANCE"].clear()  # decide on the bars below only
    # closes 100..96 then up (2-bar SMA crosses above 3-bar at 105), then down (crosses below at 90)
    closes = [100, 99, 98, 97, 96, 105, 110, 90, 80, 81]
    for tick in _ticks("RELIANCE", closes, datetime(2026, 1, 5, 4, 0, tzinfo=UTC)):
        engine.on_tick(tick)
    assert [(o["side"], o["quantity"], o["symbol"]) for o in recorder.orders] == [
        ("BUY", 5, "RELIANCE"),
        ("SELL", 5, "RELIANCE"),
    ]
    assert {o["strategy_id"] for o in recorder.orders} == {str(sid)}
    assert {o["tag"] for o in recorder.orders} == {f"deploy:{dep_id}"}
    status = client.get(f"{URL}/{sid}/status", headers=headers).get_json()
    assert status["state"] == "running"
    assert status["runtime"]["positions"] == {"RELIANCE": 0}
    assert status["runtime"]["bars"] == len(closes) - 1  # the last bar is still open
    logs = client.get(f"{URL}/{sid}/logs", headers=headers).get_json()["items"]
    assert [entry["event"] for entry in logs][:2] == ["order", "order"]

    # a restart re-attaches the running deployment with its persisted state
    engine.stop(dep_id)
    assert deployments.resume_all(app) == 1
    assert dep_id in engine.live
    stopped = client.post(f"{URL}/{sid}/stop", headers=headers)
    assert stopped.status_code == 200 and stopped.get_json()["state"] == "stopped"
    assert dep_id not in engine.live


def test_deployment_logs_risk_rejections(app, client, trader, recorder):
    _, headers = trader
    body = {"name": "r", "strategy": "sma_crossover", "params": {"fast": 2, "slow": 3}, "symbols": ["SBIN"]}
    sid = client.post(URL, json=body, headers=headers).get_json()["id"]
    dep_id = client.post(f"{URL}/{sid}/deploy", json={}, headers=headers).get_json()["id"]
    engine = deployments.engine(app)
    engine.live[dep_id].history["SBIN"].clear()
    recorder.refuse = True
    for tick in _ticks("SBIN", [100, 99, 98, 97, 96, 105, 106], datetime(2026, 1, 5, 4, 0, tzinfo=UTC)):
        engine.on_tick(tick)
    status = client.get(f"{URL}/{sid}/status", headers=headers).get_json()
    assert status["runtime"]["positions"] == {}
    logs = client.get(f"{URL}/{sid}/logs", headers=headers).get_json()["items"]
    assert logs[0]["event"] == "order_rejected" and logs[0]["level"] == "warning"
    client.post(f"{URL}/{sid}/stop", headers=headers)
