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
    assert "trades" not in result and "equity" not in result  # the summary only
    assert result["num_trades"] == 46 and result["annualisation"]["periods_per_year"] == 252
    first = client.get(f"{URL}/{job['id']}/trades?limit=10", headers=headers).get_json()["items"][0]
    assert (
        first["entry_bar"],
        first["exit_bar"],
        first["entry_price"],
        first["exit_price"],
        first["size"],
    ) == (REF_FIRST_TRADE)
    assert result["bars"] == 2148

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
    from datetime import date
    from decimal import Decimal

    from backend.domain.charges import estimate
    from backend.domain.orders.types import Product, Side

    _, headers = trader
    job = client.post(
        URL, json=goog_request(costs={"model": "charges", "product": "D"}), headers=headers
    ).get_json()
    wait(app, job["id"])
    t = client.get(f"{URL}/{job['id']}/trades", headers=headers).get_json()["items"][0]
    # each side at the rates of its own date (rates carry effective_from in config/trading.yaml)
    entry_day, exit_day = (date.fromisoformat(t[k][:10]) for k in ("entry_time", "exit_time"))
    expected = (
        estimate(Side.BUY, Product.D, int(t["size"]), Decimal(repr(t["entry_price"])), on=entry_day).total
        + estimate(Side.SELL, Product.D, int(t["size"]), Decimal(repr(t["exit_price"])), on=exit_day).total
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


def test_upload_paged_trades_downsampled_equity_and_csv(app, client, trader):
    import io
    import json

    _, headers = trader
    body = goog_request()
    body.pop("csv")
    resp = client.post(
        f"{URL}/upload",
        data={"request": json.dumps(body), "file": (io.BytesIO(GOOG.read_bytes()), "GOOG.csv")},
        content_type="multipart/form-data",
        headers=headers,
    )
    assert resp.status_code == 202, resp.get_json()
    job_id = resp.get_json()["id"]
    wait(app, job_id)
    job = client.get(f"{URL}/{job_id}", headers=headers).get_json()
    assert job["result"]["metrics"]["final_equity"] == pytest.approx(REF_FINAL_EQUITY, rel=1e-9)
    # trades: 46 in pages of 20, in entry order, the first the reference trade
    seen, cursor = [], None
    while True:
        page = client.get(
            f"{URL}/{job_id}/trades?limit=20" + (f"&cursor={cursor}" if cursor else ""), headers=headers
        ).get_json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 46 and [t["index"] for t in seen] == list(range(46))
    assert (seen[0]["entry_bar"], seen[0]["exit_bar"], seen[0]["size"]) == (75, 85, 55)
    assert seen[0]["entry_time"].startswith("2004-12-")
    eq = client.get(f"{URL}/{job_id}/equity?points=100", headers=headers).get_json()
    assert eq["bars"] == 2148 and eq["points"] == 100 and eq["bar"][-1] == 2147
    assert eq["equity"][-1] == pytest.approx(REF_FINAL_EQUITY, rel=1e-9)
    assert all(
        lo <= v <= hi for lo, v, hi in zip(eq["equity_min"], eq["equity"], eq["equity_max"], strict=True)
    )
    full = client.get(f"{URL}/{job_id}/equity.csv", headers=headers)
    assert full.status_code == 200 and full.mimetype == "text/csv"
    lines = full.get_data(as_text=True).strip().splitlines()
    assert lines[0] == "bar,time,equity,drawdown" and len(lines) == 2149
    assert lines[1].startswith("0,2004-08-19T00:00:00Z,10000.0,")
    assert float(lines[-1].split(",")[2]) == pytest.approx(REF_FINAL_EQUITY, rel=1e-12)
    # the listing carries no params, inputs or results
    listing = client.get(URL, headers=headers).get_json()["items"]
    assert listing[0]["id"] == job_id and "result" not in listing[0] and "params" not in listing[0]
    # a bad upload is a 422 naming the row, and queues nothing
    bad = client.post(
        f"{URL}/upload",
        data={
            "request": json.dumps(body),
            "file": (
                io.BytesIO(b"date,open,high,low,close\n20240102,1,0.5,0.4,1\n20240103,1,2,0.5,1\n"),
                "x.csv",
            ),
        },
        content_type="multipart/form-data",
        headers=headers,
    )
    assert bad.status_code == 422 and bad.get_json()["error"]["details"]["rows"][0]["row"] == 2
    assert len(client.get(URL, headers=headers).get_json()["items"]) == 1


def test_bad_timestamp_is_a_422_naming_the_column(client, trader):
    _, headers = trader
    csv = "Gmt time,open,high,low,close\n01/02/2024,1,2,0.5,1.5\n02/03/2024,1,2,0.5,1.5\n"
    resp = client.post(URL, json=goog_request(csv=csv), headers=headers)
    assert resp.status_code == 422
    err = resp.get_json()["error"]
    assert err["code"] == "BAD_TIMESTAMP" and err["details"]["time"]["column"] == "Gmt time"
    assert err["details"]["time"]["sample"] == "01/02/2024"
    resp = client.post(URL, json=goog_request(params={"fast": 10.5, "slow": 20}), headers=headers)
    assert resp.status_code == 422


def test_backtest_names_a_saved_strategy_version(app, client, trader):
    _, headers = trader
    created = client.post(
        "/api/v1/strategies",
        json={
            "name": "goog",
            "strategy": "sma_crossover",
            "params": {"fast": 10, "slow": 20},
            "symbols": ["RELIANCE"],
        },
        headers=headers,
    )
    assert created.status_code == 201, created.get_json()
    sid = created.get_json()["id"]
    upd = client.patch(f"/api/v1/strategies/{sid}", json={"params": {"fast": 5, "slow": 20}}, headers=headers)
    assert upd.status_code == 200, upd.get_json()
    body = goog_request(saved_strategy={"id": sid, "version": 1})
    body.pop("strategy")
    body.pop("params")
    resp = client.post(URL, json=body, headers=headers)
    assert resp.status_code == 202, resp.get_json()
    wait(app, resp.get_json()["id"])
    job = client.get(f"{URL}/{resp.get_json()['id']}", headers=headers).get_json()
    assert job["params"]["params"] == {"fast": 10, "slow": 20}
    assert job["params"]["saved_strategy"] == {"id": sid, "version": 1}
    assert job["result"]["metrics"]["final_equity"] == pytest.approx(REF_FINAL_EQUITY, rel=1e-9)
    body["saved_strategy"] = {"id": sid, "version": 9}
    assert client.post(URL, json=body, headers=headers).status_code == 404
    body["saved_strategy"] = {"id": sid, "version": 1.5}
    assert client.post(URL, json=body, headers=headers).status_code == 422


def test_text_csv_upload_streams_the_body_and_runs_once(app, client, trader):
    """``POST /backtest/upload/csv``: the raw text/csv body, the request JSON in ``?request=``."""
    import json
    from urllib.parse import quote

    _, headers = trader
    body = goog_request()
    body.pop("csv")
    url = f"{URL}/upload/csv?request={quote(json.dumps(body))}"
    resp = client.post(url, data=GOOG.read_bytes(), content_type="text/csv", headers=headers)
    assert resp.status_code == 202, resp.get_json()
    job_id = resp.get_json()["id"]
    wait(app, job_id)
    job = client.get(f"{URL}/{job_id}", headers=headers).get_json()
    assert job["status"] == "succeeded"
    assert job["result"]["metrics"]["final_equity"] == pytest.approx(REF_FINAL_EQUITY, rel=1e-9)
    assert job["result"]["bars"] == 2148 and job["result"]["num_trades"] == 46


def test_text_csv_upload_refusals(app, client, trader):
    import json
    from urllib.parse import quote

    _, headers = trader
    good = quote(json.dumps({"strategy": "sma_crossover"}))
    # a bad row: 422 naming its line, nothing queued
    bad_csv = b"date,open,high,low,close\n2024-01-02,1,2,0.5,1\n2024-01-03,1,2,0.5,oops\n"
    resp = client.post(
        f"{URL}/upload/csv?request={good}", data=bad_csv, content_type="text/csv", headers=headers
    )
    assert resp.status_code == 422
    assert resp.get_json()["error"]["details"]["rows"] == [
        {"row": 3, "column": "close", "message": "not a number: 'oops'"}
    ]
    # not text/csv: 415; request not JSON / not an object / with csv: 422 naming it
    resp = client.post(
        f"{URL}/upload/csv", data=b"x", content_type="application/octet-stream", headers=headers
    )
    assert resp.status_code == 415
    for q, field in (("{nope", "request"), ("[1]", "request")):
        resp = client.post(
            f"{URL}/upload/csv?request={quote(q)}",
            data=GOOG.read_bytes(),
            content_type="text/csv",
            headers=headers,
        )
        assert resp.status_code == 422 and field in resp.get_json()["error"]["details"]["fields"]
    with_csv = quote(json.dumps({"strategy": "sma_crossover", "csv": "a,b"}))
    resp = client.post(
        f"{URL}/upload/csv?request={with_csv}",
        data=GOOG.read_bytes(),
        content_type="text/csv",
        headers=headers,
    )
    assert resp.status_code == 422
    # above BACKTEST_MAX_CSV_BYTES: 413 before anything is parsed
    app.config["BACKTEST_MAX_CSV_BYTES"] = 1000
    try:
        resp = client.post(
            f"{URL}/upload/csv?request={good}",
            data=GOOG.read_bytes(),
            content_type="text/csv",
            headers=headers,
        )
        assert resp.status_code == 413 and resp.get_json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    finally:
        app.config["BACKTEST_MAX_CSV_BYTES"] = 128 * 1024 * 1024
    assert client.get(URL, headers=headers).get_json()["items"] == []
