"""Multi-asset portfolio backtests through the API (POST /backtest/portfolio): the Swagger example on a
fresh database, results through the backtest result endpoints, equality with the domain run on the
same stored candles, and bad input as 422/404 naming the field with nothing queued."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import numpy as np
import pytest

from backend.api.backtest.schemas import PortfolioRequestSchema
from tests.api.test_backtest import wait

URL = "/api/v1/backtest"
RANGE = {"interval": "1d", "start": "2025-01-01T00:00:00Z", "end": "2025-06-30T00:00:00Z"}


def _run(app, client, headers, body) -> dict:
    resp = client.post(f"{URL}/portfolio", json=body, headers=headers)
    assert resp.status_code == 202, resp.get_json()
    job_id = resp.get_json()["id"]
    assert resp.get_json()["kind"] == "portfolio"
    wait(app, job_id)
    job = client.get(f"{URL}/{job_id}", headers=headers).get_json()
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0
    return job


def _domain(app, symbols, **kwargs):
    """The same backtest run directly on the domain with the stored candles."""
    from backend.domain.backtest.multi import run_portfolio
    from backend.services import backtests

    with app.app_context():
        series = {s: backtests._store_data({**RANGE, "symbol": s}) for s in symbols}
        cfg = backtests.build_config(kwargs.pop("settings"))
        return run_portfolio(series, cfg, **kwargs)


def _all_trades(client, headers, job_id):
    seen, cursor = [], None
    while True:
        page = client.get(
            f"{URL}/{job_id}/trades?limit=7" + (f"&cursor={cursor}" if cursor else ""), headers=headers
        ).get_json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return seen


def test_swagger_example_runs_and_matches_the_domain(app, client, trader):
    _, headers = trader
    body = copy.deepcopy(PortfolioRequestSchema.swagger_example)
    job = _run(app, client, headers, body)
    res = job["result"]
    assert res["mode"] == "weights" and res["symbols"] == ["RELIANCE", "TCS"]
    ref = _domain(
        app,
        ["RELIANCE", "TCS"],
        weights={"RELIANCE": 0.5, "TCS": 0.45},
        rebalance="monthly",
        settings={"cash": 1_000_000, "costs": {"model": "charges", "product": "D"}},
    )
    assert res["metrics"]["final_equity"] == pytest.approx(ref.metrics["final_equity"], rel=1e-12)
    assert res["bars"] == ref.equity.size and res["num_fills"] == len(ref.fills) > 2
    # monthly rebalances: the first bar, then each month's first bar; every symbol holds something
    assert res["per_symbol"]["RELIANCE"]["final_units"] > 0 and res["per_symbol"]["TCS"]["final_units"] > 0
    assert res["per_symbol"]["TCS"]["commissions"] > 0  # the paper broker's charges were paid
    trades = _all_trades(client, headers, job["id"])
    assert len(trades) == res["num_trades"] == len(ref.trades)
    assert [(t["symbol"], t["entry_bar"], t["exit_bar"], t["size"]) for t in trades] == [
        (t.symbol, t.entry_bar, t.exit_bar, t.size) for t in ref.trades
    ]
    eq = client.get(f"{URL}/{job['id']}/equity?points=50", headers=headers).get_json()
    assert eq["bars"] == ref.equity.size and eq["equity"][-1] == pytest.approx(ref.equity[-1], rel=1e-12)
    csv = client.get(f"{URL}/{job['id']}/equity.csv", headers=headers).get_data(as_text=True).splitlines()
    assert len(csv) == ref.equity.size + 1
    png = client.get(f"{URL}/{job['id']}/chart.png", headers=headers)
    assert png.status_code == 200 and png.data[:4] == b"\x89PNG"
    listing = client.get(f"{URL}?kind=portfolio", headers=headers).get_json()["items"]
    assert [j["id"] for j in listing] == [job["id"]]


def test_signals_job_per_symbol_strategies(app, client, trader):
    _, headers = trader
    body = {
        "mode": "signals",
        "symbols": [
            {"symbol": "RELIANCE", "strategy": "sma_crossover", "params": {"fast": 3, "slow": 8}},
            {"symbol": "INFY", "strategy": "ema_crossover", "params": {"fast": 3, "slow": 8}},
        ],
        "data": RANGE,
        "cash": "500000",
        "costs": {"model": "flat", "rate": 0.001},
    }
    job = _run(app, client, headers, body)
    from backend.domain.strategies import StrategyFactory

    ref = _domain(
        app,
        ["RELIANCE", "INFY"],
        strategies={
            "RELIANCE": StrategyFactory.create("sma_crossover", {"fast": 3, "slow": 8}),
            "INFY": StrategyFactory.create("ema_crossover", {"fast": 3, "slow": 8}),
        },
        settings={"cash": 500_000, "costs": {"model": "flat", "rate": 0.001}},
    )
    res = job["result"]
    assert res["mode"] == "signals" and res["num_trades"] == len(ref.trades) > 0
    assert res["metrics"]["final_equity"] == pytest.approx(ref.metrics["final_equity"], rel=1e-12)
    assert job["params"]["symbols"][0]["params"] == {"fast": 3, "slow": 8}
    symbols = {t["symbol"] for t in _all_trades(client, headers, job["id"])}
    assert symbols <= {"RELIANCE", "INFY"} and symbols


def test_dated_schedule_job(app, client, trader):
    _, headers = trader
    body = {
        "mode": "weights",
        "symbols": [{"symbol": "SBIN"}, {"symbol": "ITC"}],
        "data": RANGE,
        "schedule": [
            {"time": "2025-01-01T00:00:00Z", "weights": {"SBIN": 0.9}},
            {"time": "2025-03-03T00:00:00+05:30", "weights": {"sbin": 0.3, "ITC": 0.6}},
        ],
        "cash": "200000",
    }
    job = _run(app, client, headers, body)
    per = job["result"]["per_symbol"]
    assert per["SBIN"]["fills"] == 2 and per["ITC"]["fills"] == 1
    trades = _all_trades(client, headers, job["id"])
    assert {t["symbol"] for t in trades} == {"SBIN"}  # the partial SBIN sale closed part of its lot
    fill_day = datetime.fromisoformat(trades[0]["exit_time"].replace("Z", "+00:00"))
    assert fill_day > datetime(2025, 3, 2, 18, 30, tzinfo=UTC)  # after the row's time, next bar's open


def _base(**extra):
    body = {
        "mode": "weights",
        "symbols": [{"symbol": "RELIANCE", "weight": 0.5}, {"symbol": "TCS", "weight": 0.4}],
        "data": RANGE,
    }
    body.update(extra)
    return body


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"symbols": [{"symbol": "RELIANCE", "weight": 0.7}, {"symbol": "TCS", "weight": 0.4}]}, "symbols"),
        ({"symbols": [{"symbol": "RELIANCE", "weight": -0.2}]}, "symbols"),
        ({"symbols": [{"symbol": "RELIANCE"}]}, "symbols"),
        (
            {"symbols": [{"symbol": "RELIANCE", "weight": 0.5}, {"symbol": "reliance", "weight": 0.1}]},
            "symbols",
        ),
        ({"symbols": [{"symbol": "RELIANCE", "weight": 0.5, "strategy": "macd"}]}, "symbols"),
        ({"symbols": []}, "symbols"),
        ({"symbols": [{"symbol": "  ", "weight": 0.1}]}, "symbols"),
        ({"mode": "signals"}, "symbols"),  # no strategies
        ({"mode": "both"}, "mode"),
        ({"rebalance": "bars"}, "rebalance_bars"),
        ({"rebalance": "bars", "rebalance_bars": 2.5}, "rebalance_bars"),
        ({"rebalance": "hourly"}, "rebalance"),
        ({"cash": "-1"}, "cash"),
        ({"costs": {"model": "flat", "rate": 0.5}}, "costs"),
        (
            {
                "symbols": [{"symbol": "RELIANCE"}],
                "schedule": [{"time": "2025-08-01T00:00:00Z", "weights": {"RELIANCE": 0.5}}],
            },
            "schedule",
        ),
        (
            {
                "symbols": [{"symbol": "RELIANCE"}],
                "schedule": [{"time": "2025-02-01T00:00:00Z", "weights": {"TCS": 0.5}}],
            },
            "schedule",
        ),
    ],
)
def test_bad_requests_are_422_naming_the_field(client, trader, change, field):
    _, headers = trader
    resp = client.post(f"{URL}/portfolio", json=_base(**change), headers=headers)
    assert resp.status_code == 422, resp.get_json()
    assert field in resp.get_json()["error"]["details"]["fields"], resp.get_json()
    assert client.get(URL, headers=headers).get_json()["items"] == []


def test_unknown_symbol_strategy_and_params(client, trader):
    _, headers = trader
    resp = client.post(
        f"{URL}/portfolio",
        json=_base(symbols=[{"symbol": "NOPE1", "weight": 0.1}, {"symbol": "TCS", "weight": 0.1}]),
        headers=headers,
    )
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "UNKNOWN_SYMBOL"
    assert resp.get_json()["error"]["details"]["symbols"] == ["NOPE1"]
    signals = _base(mode="signals", symbols=[{"symbol": "TCS", "strategy": "nope"}])
    assert client.post(f"{URL}/portfolio", json=signals, headers=headers).status_code == 404
    signals["symbols"] = [{"symbol": "TCS", "strategy": "sma_crossover", "params": {"fast": 30, "slow": 20}}]
    resp = client.post(f"{URL}/portfolio", json=signals, headers=headers)
    assert resp.status_code == 422 and "0" in {str(k) for k in resp.get_json()["error"]["details"]["symbols"]}
    long_range = _base(data={**RANGE, "interval": "1m", "start": "2024-01-01T00:00:00Z"})
    assert client.post(f"{URL}/portfolio", json=long_range, headers=headers).status_code == 422
    assert client.get(URL, headers=headers).get_json()["items"] == []


def test_a_read_key_cannot_queue_a_portfolio_backtest(client, trader):
    from tests.api.test_api_key_scopes import _key

    _, headers = trader
    read_key = _key(client, headers, ["read"])
    resp = client.post(f"{URL}/portfolio", json=_base(), headers=read_key)
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "INSUFFICIENT_SCOPE"


def test_positions_never_exceed_the_cash(app):
    """Weights summing to 1 with charges: the last buy is cut to what the cash affords."""
    ref = _domain(
        app,
        ["RELIANCE", "TCS", "INFY"],
        weights={"RELIANCE": 0.4, "TCS": 0.3, "INFY": 0.3},
        rebalance="weekly",
        settings={"cash": 300_000, "costs": {"model": "charges", "product": "D"}},
    )
    assert ref.cash.min() >= 0
    holdings = np.nansum(ref.positions * ref.close, axis=0)
    np.testing.assert_allclose(ref.cash + holdings, ref.equity, rtol=1e-12)


def test_progress_events_one_step_per_symbol(app, client, trader, monkeypatch):
    from backend.services import jobs

    events = []
    monkeypatch.setattr(
        jobs, "emit_to_user", lambda uid, event, payload: events.append((event, dict(payload)))
    )
    _, headers = trader
    body = _base(symbols=[{"symbol": s, "weight": 0.2} for s in ("RELIANCE", "TCS", "INFY", "SBIN")])
    job = _run(app, client, headers, body)
    running = [
        p["progress"]
        for e, p in events
        if e == "job.progress" and p["id"] == job["id"] and p["status"] == "running"
    ]
    # 4 symbols' candles, the run, the stored result: 0, 1/6 ... 1
    assert running == sorted(running) and running[-1] == 1.0
    assert len(set(running)) >= 5


def test_rebalance_every_n_bars_and_fractional_shorts(app, client, trader):
    _, headers = trader
    body = _base(
        symbols=[{"symbol": "RELIANCE", "weight": 0.6}, {"symbol": "TCS", "weight": -0.3}],
        rebalance="bars",
        rebalance_bars=20,
        long_only=False,
        fractional=True,
        slippage=0.001,
    )
    job = _run(app, client, headers, body)
    ref = _domain(
        app,
        ["RELIANCE", "TCS"],
        weights={"RELIANCE": 0.6, "TCS": -0.3},
        rebalance=20,
        settings={"long_only": False, "fractional": True, "slippage": 0.001},
    )
    res = job["result"]
    assert res["metrics"]["final_equity"] == pytest.approx(ref.metrics["final_equity"], rel=1e-12)
    assert res["per_symbol"]["TCS"]["final_units"] < 0 < res["per_symbol"]["RELIANCE"]["final_units"]
    assert res["num_fills"] == len(ref.fills) and len({f.bar for f in ref.fills}) == -(
        -(res["bars"] - 1) // 20
    )
