"""Strategies API: catalog, options analyze/place, saved strategy CRUD with versions and soft delete,
and a deployment placing paper orders from feed bars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backend.domain.market.types import Tick
from backend.domain.strategies import StrategyFactory
from backend.services import deployments, market_data
from tests.services import trading_support
from tests.services.trading_support import check_invariants

URL = "/api/v1/strategies"


market = trading_support.market  # shared fake market fixture: RELIANCE 1000, SBIN 800, INFY 1500


@pytest.fixture
def feed_market(market):
    """The fake market with no stored history (deployments warm up from an empty candle store)."""
    market.candles = lambda *a: []
    return market


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


def test_options_place_is_refused_whole_when_the_account_excludes_options(app, client, trader):
    """The owner tightened the account to the EQ segment: the real basket check refuses both option
    legs together and places nothing (tests/api/test_options_basket.py places them when allowed)."""
    from backend.extensions import db
    from backend.models.trading import TradingAccount

    _, headers = trader
    account_id = client.get("/api/v1/portfolio/accounts", headers=headers).get_json()[0]["id"]
    with app.app_context():
        db.session.get(TradingAccount, account_id).risk_overrides = {"allowed_segments": ["EQ"]}
        db.session.commit()
        db.session.remove()
    params = {"underlying": "NIFTY", "expiry": _expiry(app)}
    resp = client.post(f"{URL}/options/bull_call_spread/place", json={"params": params}, headers=headers)
    assert resp.status_code == 422, resp.get_json()
    err = resp.get_json()["error"]
    assert err["code"] == "RISK_REJECTED"
    instrument = [c for c in err["details"]["checks"] if c["name"] == "instrument"]
    assert [c["legs"] for c in instrument] == [[0], [1]]
    assert all("segment not allowed" in c["reason"] for c in instrument)
    rows = client.get("/api/v1/orders", headers=headers).get_json()["items"]
    assert [r["status"] for r in rows] == ["rejected", "rejected"]
    assert all(r["symbol"].startswith("NIFTY ") and r["symbol"].split()[2] == "CE" for r in rows)
    assert client.get("/api/v1/portfolio/positions", headers=headers).get_json() in ([], {"items": []})


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


def _feed(engine, market, ticks: list[Tick]) -> None:
    """Each tick moves the fake market's quote first, so an order a closing bar triggers is filled
    at the price of the tick that closed that bar."""
    for tick in ticks:
        market.set(tick.symbol, tick.ltp)
        engine.on_tick(tick)


def test_deployment_places_real_paper_orders_from_feed_bars(app, client, trader, feed_market):
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
    assert list(engine.live[dep_id].history["RELIANCE"]) == []  # no stored history: live bars only
    # closes 100..96 then up (2-bar SMA crosses above 3-bar at 105), then down (crosses below at 90)
    closes = [100, 99, 98, 97, 96, 105, 110, 90, 80, 81]
    _feed(engine, feed_market, _ticks("RELIANCE", closes, datetime(2026, 1, 5, 4, 0, tzinfo=UTC)))

    orders = client.get("/api/v1/orders?symbol=RELIANCE", headers=headers).get_json()["items"]
    orders.sort(key=lambda o: o["id"])
    assert [(o["side"], o["quantity"], o["status"]) for o in orders] == [
        ("BUY", 5, "filled"),
        ("SELL", 5, "filled"),
    ]
    assert {o["strategy_id"] for o in orders} == {str(sid)}
    assert {o["tag"] for o in orders} == {f"deploy:{dep_id}"}
    # the bar closing at 105 is closed by the 110 tick: BUY at ask 110.05 + 5 bps = 110.105025, up to
    # the 0.05 tick; the bar closing at 90 is closed by the 80 tick: SELL at bid 79.95 - 5 bps =
    # 79.910025, down to the tick
    assert [Decimal(o["average_price"]) for o in orders] == [Decimal("110.15"), Decimal("79.90")]
    trades = client.get(f"/api/v1/orders/{orders[0]['id']}/trades", headers=headers).get_json()
    assert [(t["quantity"], Decimal(t["price"])) for t in trades] == [(5, Decimal("110.15"))]
    check_invariants(app, orders[0]["account_id"])

    status = client.get(f"{URL}/{sid}/status", headers=headers).get_json()
    assert status["state"] == "running"
    assert status["runtime"]["positions"] == {"RELIANCE": 0}
    assert status["runtime"]["bars"] == len(closes) - 1  # the last bar is still open
    logs = client.get(f"{URL}/{sid}/logs", headers=headers).get_json()["items"]
    assert [entry["event"] for entry in logs][:2] == ["order", "order"]
    assert {entry["details"]["order_id"] for entry in logs[:2]} == {o["id"] for o in orders}

    # a restart re-attaches the running deployment with its persisted state
    engine.stop(dep_id)
    assert deployments.resume_all(app) == 1
    assert dep_id in engine.live
    stopped = client.post(f"{URL}/{sid}/stop", headers=headers)
    assert stopped.status_code == 200 and stopped.get_json()["state"] == "stopped"
    assert dep_id not in engine.live


def test_deployment_logs_risk_rejections(app, client, trader, feed_market):
    _, headers = trader
    # 100,000 shares at ~105 is far over the 1,000,000 starting cash and the order value limit
    body = {
        "name": "r", "strategy": "sma_crossover", "params": {"fast": 2, "slow": 3}, "symbols": ["SBIN"],
        "quantity": 100000,
    }  # fmt: skip
    sid = client.post(URL, json=body, headers=headers).get_json()["id"]
    dep_id = client.post(f"{URL}/{sid}/deploy", json={}, headers=headers).get_json()["id"]
    engine = deployments.engine(app)
    _feed(
        engine,
        feed_market,
        _ticks("SBIN", [100, 99, 98, 97, 96, 105, 106], datetime(2026, 1, 5, 4, 0, tzinfo=UTC)),
    )
    status = client.get(f"{URL}/{sid}/status", headers=headers).get_json()
    assert status["runtime"]["positions"] == {}
    logs = client.get(f"{URL}/{sid}/logs", headers=headers).get_json()["items"]
    assert logs[0]["event"] == "order_rejected" and logs[0]["level"] == "warning"
    assert logs[0]["details"]["code"] == "RISK_REJECTED"
    rows = client.get("/api/v1/orders?symbol=SBIN", headers=headers).get_json()["items"]
    assert [(r["status"], r["strategy_id"]) for r in rows] == [("rejected", str(sid))]
    assert {c["name"] for c in rows[0]["reject_reasons"]} >= {"buying_power", "max_order_value"}
    assert dep_id in engine.live
    client.post(f"{URL}/{sid}/stop", headers=headers)
