"""Analytics endpoints with reference values from the shared metric functions."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

import numpy as np
import pytest

from backend.domain import metrics as m
from backend.services import market_data

URL = "/api/v1/analytics"


def _closes(app, symbol, start, end):
    with app.app_context():
        bars = market_data.candles(symbol, "1d", datetime.combine(start, time(0), UTC),
                                   datetime.combine(end, time(23, 59), UTC))  # fmt: skip
        return {b.ts.date(): float(b.close) for b in bars}


def test_simulate_buy_and_hold_matches_reference(app, client, trader):
    _, headers = trader
    start, end = date(2025, 1, 1), date(2025, 6, 30)
    body = {"symbols": ["RELIANCE", "TCS"], "weights": [3, 1], "amount": "100000", "start": "2025-01-01",
            "end": "2025-06-30"}  # fmt: skip
    resp = client.post(f"{URL}/simulate", json=body, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    out = resp.get_json()
    a, b = _closes(app, "RELIANCE", start, end), _closes(app, "TCS", start, end)
    days = sorted(set(a) & set(b))
    units = np.array([75000 / a[days[0]], 25000 / b[days[0]]])
    ref = np.array([units @ np.array([a[d], b[d]]) for d in days])
    assert len(out["equity"]) == len(days)
    assert Decimal(out["final_value"]) == Decimal(repr(float(ref[-1]))).quantize(Decimal("0.01"))
    rets = m.returns_from_equity(ref)
    assert out["metrics"]["sharpe"] == pytest.approx(m.sharpe_ratio(rets, 252), rel=1e-9)
    assert out["metrics"]["max_drawdown"] == pytest.approx(m.max_drawdown(ref)[0], rel=1e-9)
    assert out["metrics"]["cagr"] == pytest.approx(m.cagr(ref, 252), rel=1e-9)
    assert out["currency"] == "INR"
    monthly = client.post(
        f"{URL}/simulate", json={**body, "rebalance": "monthly"}, headers=headers
    ).get_json()
    assert monthly["equity"][0] == out["equity"][0] and monthly["equity"] != out["equity"]


def test_simulate_bad_input(client, trader):
    _, headers = trader
    bad = client.post(f"{URL}/simulate", json={"symbols": ["TCS"], "weights": [1, 2], "amount": "10",
                                               "start": "2025-01-01"}, headers=headers)  # fmt: skip
    assert bad.status_code == 422
    missing = client.post(
        f"{URL}/simulate", json={"symbols": ["TCS"], "start": "2025-01-01"}, headers=headers
    )
    assert missing.status_code == 422 and "amount" in missing.get_json()["error"]["details"]["fields"]


def test_snapshots_and_performance_use_the_metric_functions(app, client, trader):
    uid, headers = trader
    snap = client.post(f"{URL}/snapshots", json={}, headers=headers)
    assert snap.status_code == 201, snap.get_json()
    account_id = snap.get_json()["account_id"]
    assert Decimal(snap.get_json()["equity"]) == Decimal(snap.get_json()["cash"])  # no positions yet
    from backend.extensions import db
    from backend.models.strategies import EquitySnapshot

    values = [100000, 101000, 99500, 102300, 103000]
    with app.app_context():
        db.session.query(EquitySnapshot).delete()
        for i, v in enumerate(values):
            row = EquitySnapshot(user_id=uid, account_id=account_id, day=date(2025, 3, 3 + i))
            row.equity = row.cash = Decimal(v)
            row.positions_value = Decimal(0)
            db.session.add(row)
        db.session.commit()
    perf = client.get(
        f"{URL}/performance?account_id={account_id}&from=2025-03-01", headers=headers
    ).get_json()
    eq = np.array(values, dtype=float)
    rets = m.returns_from_equity(eq)
    assert perf["dates"][0] == "2025-03-03" and len(perf["equity"]) == 5
    assert perf["metrics"]["sharpe"] == pytest.approx(m.sharpe_ratio(rets, 252), rel=1e-12)
    assert perf["metrics"]["sortino"] == pytest.approx(m.sortino_ratio(rets, 252), rel=1e-12)
    assert perf["metrics"]["max_drawdown"] == pytest.approx(1500 / 101000, rel=1e-12)
    assert perf["metrics"]["var_95_historical"] == pytest.approx(m.historical_var(rets, 0.95), rel=1e-12)


def test_risk_pnl_and_trades_on_an_empty_account(client, trader):
    _, headers = trader
    risk = client.get(f"{URL}/risk", headers=headers)
    assert risk.status_code == 200, risk.get_json()
    assert risk.get_json()["gross_exposure"] == "0" and risk.get_json()["var_historical"] is None
    pnl = client.get(f"{URL}/pnl?group_by=strategy", headers=headers).get_json()
    assert pnl["items"] == [] and pnl["group_by"] == "strategy"
    assert client.get(f"{URL}/pnl?group_by=week", headers=headers).status_code == 422
    assert client.get(f"{URL}/trades", headers=headers).get_json()["closed_trades"] == 0
