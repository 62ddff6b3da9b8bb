"""Backtest jobs through the API: GOOG reference figures end to end, CSV validation, chart PNG,
sweeps, cancel and the per-user cap (embedded runner; RQ is covered in tests/services/test_jobs_rq.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.services import jobs

GOOG = Path(__file__).resolve().parents[1] / "data" / "GOOG.csv"
# backtesting.py 0.6.6 reference (tests/unit/backtest/test_goog_parity.py records how it was computed)
REF_FINAL_EQUITY = 63341.19135999998
REF_FIRST_TRADE = (75, 85, 179.13, 182.0, 55)
URL = "/api/v1/backtest"


def goog_request(**extra) -> dict:
    body = {
        "strategy": "sma_crossover",
        "params": {"fast": 10, "slow": 20},
        "csv": GOOG.read_text(),
        "cash": "10000",
        "costs": {"model": "flat", "rate": 0.002},
    }
    body.update(extra)
    return body


def wait(app, job_id: str) -> None:
    """Embedded: join the job's thread. RQ (Redis run): serve the queue once in this process."""
    runner = jobs.runner(app)
    if isinstance(runner, jobs.EmbeddedRunner):
        runner.wait(job_id, timeout=60)
        return
    from rq import SimpleWorker

    with app.app_context():
        SimpleWorker([runner.queue], connection=runner.connection).work(burst=True, with_scheduler=False)


def test_goog_backtest_job_matches_reference(app, client, trader):
    _, headers = trader
    resp = client.post(URL, json=goog_request(), headers=headers)
    assert resp.status_code == 202, resp.get_json()
    job = resp.get_json()
    assert job["status"] in ("queued", "running", "succeeded")
    wait(app, job["id"])
    body = client.get(f"{URL}/{job['id']}", headers=headers).get_json()
    assert body["status"] == "succeeded", body
    assert body["progress"] == 1.0
    result = body["result"]
    assert result["metrics"]["final_equity"] == pytest.approx(REF_FINAL_EQUITY, rel=1e-9)
    first = result["trades"][0]
    assert (
        first["entry_bar"],
        first["exit_bar"],
        first["entry_price"],
        first["exit_price"],
        first["size"],
    ) == (REF_FIRST_TRADE)
    assert len(result["equity"]) == result["bars"] == 2148

    png = client.get(f"{URL}/{job['id']}/chart.png", headers=headers)
    assert png.status_code == 200
    assert png.mimetype == "image/png"
    assert png.data[:8] == b"\x89PNG\r\n\x1a\n"

    listing = client.get(URL, headers=headers).get_json()
    assert [j["id"] for j in listing["items"]] == [job["id"]]


def test_other_users_cannot_see_a_job(app, client, trader, make_user):
    _, headers = trader
    job = client.post(URL, json=goog_request(), headers=headers).get_json()
    wait(app, job["id"])
    _, other = make_user("trader")
    assert client.get(f"{URL}/{job['id']}", headers=other).status_code == 404
    assert client.get(f"{URL}/{job['id']}/chart.png", headers=other).status_code == 404


def test_charges_cost_model_pays_the_paper_broker_schedule(app, client, trader):
    from decimal import Decimal

    from backend.domain.charges import estimate
    from backend.domain.orders.types import Product, Side

    _, headers = trader
    job = client.post(
        URL, json=goog_request(costs={"model": "charges", "product": "D"}), headers=headers
    ).get_json()
    wait(app, job["id"])
    result = client.get(f"{URL}/{job['id']}", headers=headers).get_json()["result"]
    t = result["trades"][0]
    expected = (
        estimate(Side.BUY, Product.D, int(t["size"]), Decimal(repr(t["entry_price"]))).total
        + estimate(Side.SELL, Product.D, int(t["size"]), Decimal(repr(t["exit_price"]))).total
    )
    assert t["commission"] == pytest.approx(float(expected), abs=1e-9)


def test_bad_csv_rows_are_named_and_nothing_is_queued(app, client, trader):
    _, headers = trader
    csv = "date,open,high,low,close\n2024-01-01,1,2,0.5,1.5\n2024-01-02,abc,2,0.5,1.5\n2024-01-03,1,2,0.5\n"
    resp = client.post(URL, json=goog_request(csv=csv), headers=headers)
    assert resp.status_code == 422
    rows = resp.get_json()["error"]["details"]["rows"]
    assert {r["row"] for r in rows} == {3, 4}
    missing = client.post(
        URL, json=goog_request(csv="date,open,high,close\n2024-01-01,1,2,3\n"), headers=headers
    )
    assert missing.status_code == 422
    assert "low" in missing.get_json()["error"]["details"]
    assert client.get(URL, headers=headers).get_json()["items"] == []


def test_bad_input_is_422_naming_the_field(client, trader):
    _, headers = trader
    cases = [
        ({"strategy": "nope"}, 404),
        ({"params": {"fast": 30, "slow": 20}}, 422),
        ({"strategy": "iron_condor"}, 422),
        ({"costs": {"model": "flat", "rate": 0.5}}, 422),
        ({"cash": "-5"}, 422),
    ]
    for extra, status in cases:
        resp = client.post(URL, json=goog_request(**extra), headers=headers)
        assert resp.status_code == status, (extra, resp.get_json())
    both = client.post(
        URL,
        json=goog_request(
            data={
                "symbol": "RELIANCE",
                "interval": "1d",
                "start": "2025-01-01T00:00:00Z",
                "end": "2025-02-01T00:00:00Z",
            }
        ),
        headers=headers,
    )
    assert both.status_code == 422
    assert "data" in both.get_json()["error"]["details"]["fields"]


def test_backtest_from_the_candle_store(app, client, trader):
    _, headers = trader
    body = goog_request(
        csv=None,
        data={
            "symbol": "RELIANCE",
            "interval": "1d",
            "start": "2025-01-01T00:00:00Z",
            "end": "2025-06-30T00:00:00Z",
        },
    )
    body.pop("csv")
    resp = client.post(URL, json=body, headers=headers)
    assert resp.status_code == 202, resp.get_json()
    wait(app, resp.get_json()["id"])
    job = client.get(f"{URL}/{resp.get_json()['id']}", headers=headers).get_json()
    assert job["status"] == "succeeded", job
    with app.app_context():
        from datetime import UTC, datetime

        from backend.services import market_data

        bars = market_data.candles(
            "RELIANCE", "1d", datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 6, 30, tzinfo=UTC)
        )
    assert job["result"]["bars"] == len(bars)
    # flat with no trades the equity equals the cash; otherwise it moves with the closes
    assert job["result"]["metrics"]["start_equity"] == pytest.approx(10000)


def test_sweep_job_gives_heatmap(app, client, trader):
    _, headers = trader
    body = goog_request(grid={"fast": [5, 10], "slow": [20, 30]}, metric="final_equity")
    resp = client.post(f"{URL}/sweeps", json=body, headers=headers)
    assert resp.status_code == 202, resp.get_json()
    wait(app, resp.get_json()["id"])
    job = client.get(f"{URL}/{resp.get_json()['id']}", headers=headers).get_json()
    assert job["status"] == "succeeded", job
    heat = job["result"]["heatmap"]
    assert heat["x_param"] == "fast" and heat["x_values"] == [5, 10]
    # the (fast=10, slow=20) cell is the GOOG reference backtest
    assert heat["matrix"][0][1] == pytest.approx(REF_FINAL_EQUITY, rel=1e-9)
    bad = client.post(f"{URL}/sweeps", json=goog_request(grid={"nope": [1]}), headers=headers)
    assert bad.status_code == 422
