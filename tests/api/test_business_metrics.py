"""Business metrics in /metrics, moved by what a trader and an operator do, through the client.

Counters are process-wide (other tests move them too), so every assertion compares two scrapes around
the action and expects the exact difference.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from backend.services import jobs
from tests.api.test_backtest import URL as BACKTEST_URL
from tests.api.test_backtest import goog_request, wait
from tests.api.test_broker import TOKEN, connect, upstox  # noqa: F401 - ``upstox`` is a fixture
from tests.services import trading_support
from tests.services.trading_support import order_body
from tests.stubs.upstox_stub import SERVER_ERROR

market = trading_support.market  # shared fixture
P = "/api/v1/portfolio"
ORDERS = "/api/v1/orders"


def scrape(client) -> dict[tuple[str, frozenset], float]:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    out: dict[tuple[str, frozenset], float] = {}
    for family in text_string_to_metric_families(resp.get_data(as_text=True)):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def val(snap, name: str, **labels: str) -> float:
    return snap.get((name, frozenset(labels.items())), 0.0)


def total(snap, name: str, **labels: str) -> float:
    """Sum of ``name`` over every label set containing ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in snap.items() if n == name and want <= ls)


def delta(before, after, name: str, **labels: str) -> float:
    return val(after, name, **labels) - val(before, name, **labels)


def _account_id(client, h) -> int:
    return client.get(f"{P}/accounts", headers=h).get_json()[0]["id"]


def test_order_placed_filled_then_rejected_by_reason(client, trader, market):
    _, h = trader
    before = scrape(client)
    r = client.post(ORDERS, json=order_body(quantity=10), headers=h)
    assert r.status_code == 201 and r.get_json()["status"] == "filled", r.get_json()
    mid = scrape(client)
    assert delta(before, mid, "orders_placed_total", mode="paper") == 1
    assert delta(before, mid, "order_fills_total", mode="paper") == 1
    assert total(mid, "orders_rejected_total") == total(before, "orders_rejected_total")

    # more than the account's cash: refused by the risk checks, recorded as rejected
    r = client.post(ORDERS, json=order_body(quantity=5_000), headers=h)
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "RISK_REJECTED", r.get_json()
    checks = [c["name"] for c in r.get_json()["error"]["details"]["checks"]]
    # an unknown symbol: refused before any risk check, with its own code
    unknown = client.post(ORDERS, json=order_body(symbol="NOPE_XYZ"), headers=h)
    assert unknown.status_code in (404, 422), unknown.get_json()
    code = unknown.get_json()["error"]["code"]
    after = scrape(client)
    assert delta(mid, after, "orders_rejected_total", reason="RISK_REJECTED") == 1
    assert delta(mid, after, "orders_rejected_total", reason=code) == 1
    assert total(after, "orders_rejected_total") - total(mid, "orders_rejected_total") == 2
    assert checks and all(delta(mid, after, "risk_check_failures_total", check=c) == 1 for c in checks)
    assert delta(mid, after, "orders_placed_total", mode="paper") == 0
    assert delta(mid, after, "order_fills_total", mode="paper") == 0


def test_kill_switches_count_activations_and_show_the_global_state(client, trader, admin, market):
    _, h = trader
    _, ah = admin
    aid = _account_id(client, h)
    url = f"{P}/accounts/{aid}/kill-switch"
    before = scrape(client)
    assert client.post(url, json={"on": True, "reason": "tilt"}, headers=h).status_code == 200
    assert client.post(url, json={"on": True, "reason": "again"}, headers=h).status_code == 200  # already on
    refused = client.post(ORDERS, json=order_body(), headers=h)
    assert refused.status_code == 422
    assert client.post(url, json={"on": False}, headers=h).status_code == 200
    assert client.post(url, json={"on": True, "reason": "tilt"}, headers=h).status_code == 200
    mid = scrape(client)
    assert delta(before, mid, "kill_switch_activations_total", scope="account") == 2
    assert delta(before, mid, "orders_rejected_total", reason="RISK_REJECTED") == 1
    assert val(mid, "trading_global_kill_switch") == 0

    g = "/api/v1/admin/risk/kill-switch"
    assert client.put(g, json={"on": True, "reason": "exchange outage"}, headers=ah).status_code == 200
    on = scrape(client)
    assert delta(mid, on, "kill_switch_activations_total", scope="global") == 1
    assert val(on, "trading_global_kill_switch") == 1
    assert client.put(g, json={"on": False, "reason": ""}, headers=ah).status_code == 200
    off = scrape(client)
    assert val(off, "trading_global_kill_switch") == 0
    assert delta(on, off, "kill_switch_activations_total", scope="global") == 0


def test_daily_loss_trip_is_counted_once(client, trader, market):
    _, h = trader
    aid = _account_id(client, h)
    r = client.patch(f"{P}/accounts/{aid}/risk", json={"overrides": {"daily_loss_limit": "5000"}}, headers=h)
    assert r.status_code == 200, r.get_json()
    assert client.post(ORDERS, json=order_body(quantity=100), headers=h).status_code == 201
    before = scrape(client)
    market.set("RELIANCE", "950")
    # realised 100 x (949.45 - 1000.60) = -5115 >= 5000: HALTED (tests/api/test_broker_rules_risk.py)
    assert client.post(f"{P}/positions/RELIANCE/close", headers=h).status_code == 201
    assert client.get(f"{P}/accounts/{aid}/risk", headers=h).get_json()["trading_state"] == "HALTED"
    refused = client.post(ORDERS, json=order_body(symbol="INFY", quantity=1), headers=h)
    assert refused.status_code == 422
    after = scrape(client)
    assert delta(before, after, "risk_trips_total", state="HALTED") == 1
    assert delta(before, after, "risk_trips_total", state="REDUCING") == 0
    assert delta(before, after, "orders_placed_total", mode="paper") == 1  # the exit
    assert delta(before, after, "risk_check_failures_total", check="daily_loss_limit") == 1


def test_a_job_run_is_timed_by_kind_and_status(app, client, trader):
    _, h = trader
    before = scrape(client)
    resp = client.post(BACKTEST_URL, json=goog_request(), headers=h)
    assert resp.status_code == 202, resp.get_json()
    wait(app, resp.get_json()["id"])
    assert (
        client.get(f"{BACKTEST_URL}/{resp.get_json()['id']}", headers=h).get_json()["status"] == "succeeded"
    )
    after = scrape(client)
    labels = {"kind": "backtest", "status": "succeeded"}
    assert delta(before, after, "job_duration_seconds_count", **labels) == 1
    assert delta(before, after, "job_duration_seconds_sum", **labels) > 0
    assert delta(before, after, "job_duration_seconds_bucket", le="+Inf", **labels) == 1


class _Parked:
    """A runner that takes jobs and runs none of them (a stalled worker pool)."""

    def enqueue(self, job_id: str) -> None:
        pass

    def cancel(self, job_id: str) -> None:
        pass

    def shutdown(self) -> None:
        pass


def test_job_queue_depth_and_age(app, client, trader):
    _, h = trader
    jobs.set_runner(app, _Parked())
    try:
        assert val(scrape(client), "jobs_queued", kind="backtest") == 0
        first = client.post(BACKTEST_URL, json=goog_request(), headers=h).get_json()
        client.post(BACKTEST_URL, json=goog_request(), headers=h)
        snap = scrape(client)
        assert val(snap, "jobs_queued", kind="backtest") == 2
        assert val(snap, "jobs_running", kind="backtest") == 0
        assert val(snap, "jobs_oldest_queued_age_seconds") >= 0
        assert client.delete(f"{BACKTEST_URL}/{first['id']}", headers=h).status_code in (200, 202, 204)
        assert val(scrape(client), "jobs_queued", kind="backtest") == 1
    finally:
        jobs.set_runner(app, None)


def test_broker_calls_and_failures_by_route_template(client, trader, upstox, app):  # noqa: F811
    _, h = trader
    before = scrape(client)
    connect(client, h, upstox)
    mid = scrape(client)
    token = {"upstream": "broker", "method": "POST", "endpoint": "/v2/login/authorization/token"}
    assert delta(before, mid, "upstream_requests_total", **token) == 1
    assert total(mid, "upstream_request_failures_total") == total(before, "upstream_request_failures_total")

    sent = len(upstox.requests)
    upstox.fail_next(SERVER_ERROR, times=3)  # three attempts of the first GET, then the breaker opens
    rep = client.post("/api/v1/broker/reconcile", json={}, headers=h).get_json()
    assert rep["errors"][0]["code"] == "BROKER_UNAVAILABLE"
    after = scrape(client)
    calls = upstox.requests[sent:]
    assert len(calls) == 3 and len({c.path for c in calls}) == 1
    ep = {"upstream": "broker", "method": "GET", "endpoint": calls[0].path}
    assert delta(mid, after, "upstream_requests_total", **ep) == 3
    assert delta(mid, after, "upstream_request_failures_total", reason="BROKER_UNAVAILABLE", **ep) == 3
    assert total(after, "upstream_requests_total", upstream="broker") - total(
        mid, "upstream_requests_total", upstream="broker"
    ) == len(calls)  # calls refused by the open breaker never left: not counted
    assert (
        delta(
            mid, after, "upstream_request_duration_seconds_count", upstream="broker", endpoint=ep["endpoint"]
        )
        == 3
    )


def test_market_data_calls_are_labelled_by_template_never_by_instrument(client, upstox, app):  # noqa: F811
    from backend.domain.market.instruments import InstrumentRegistry, seed_instruments
    from backend.domain.market.upstox_provider import UpstoxProvider
    from backend.services import broker as svc

    app.config["UPSTOX_ACCESS_TOKEN"] = TOKEN
    upstox.access_token = TOKEN
    try:
        before = scrape(client)
        with app.app_context():
            provider = UpstoxProvider(
                token_provider=svc.market_data_token_provider(app),
                instruments=InstrumentRegistry(seed_instruments()),
                base_url=app.config["UPSTOX_API_BASE_URL"],
                call_wrapper=svc.market_data_call_wrapper(app),
            )
            upstox.fail_next(SERVER_ERROR, times=1)
            provider.ltp(["RELIANCE"])  # one 5xx, then answered on the retry
        after = scrape(client)
    finally:
        app.config["UPSTOX_ACCESS_TOKEN"] = None
        upstox.forced.clear()
    ep = {"upstream": "market_data", "method": "GET", "endpoint": "/v3/market-quote/ltp"}
    assert delta(before, after, "upstream_requests_total", **ep) == 2
    assert delta(before, after, "upstream_request_failures_total", reason="BROKER_UNAVAILABLE", **ep) == 1
    assert not [ls for (n, ls) in after if n.startswith("upstream_") and "NSE_EQ" in str(ls)]


def test_pool_gauge_counts_connections_in_use(app, client):
    from backend.extensions import db

    idle = val(scrape(client), "db_pool_checked_out")
    with app.app_context():
        conn = db.engine.connect()
        try:
            held = val(scrape(client), "db_pool_checked_out")
        finally:
            conn.close()
    assert held - idle == 1
    assert val(scrape(client), "db_pool_checked_out") == idle
    snap = scrape(client)
    assert ("db_pool_overflow", frozenset()) in snap and ("db_pool_size", frozenset()) in snap


_WORKER = """
from backend.observability import metrics
metrics.record_orders_placed("paper", 2)
metrics.SOCKETIO_CONNECTIONS.inc()
print("ok")
"""


def test_multiprocess_mode_sums_every_worker_and_forgets_dead_ones(app, client, tmp_path):
    """Two worker processes write to PROMETHEUS_MULTIPROC_DIR; /metrics answers their sum, and the
    gunicorn hook removes a dead worker's live gauge (its counted events stay)."""
    import os
    import subprocess
    import sys
    from types import SimpleNamespace

    from config import gunicorn as hooks

    root = tmp_path / "prom"
    (root / "stale.db").parent.mkdir()
    (root / "stale.db").write_bytes(b"left by a previous run")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(root)
    try:
        hooks.on_starting(None)
        assert list(root.iterdir()) == []  # emptied before the workers start
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        workers = [
            subprocess.Popen([sys.executable, "-c", _WORKER], env=env, stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        for w in workers:
            assert w.communicate(timeout=120)[0].strip() == "ok"
        app.config["PROMETHEUS_MULTIPROC_DIR"] = str(root)
        snap = scrape(client)
        assert val(snap, "orders_placed_total", mode="paper") == 4
        assert val(snap, "socketio_connections") == 2
        assert ("trading_global_kill_switch", frozenset()) in snap  # database state, read by this worker
        hooks.child_exit(None, SimpleNamespace(pid=workers[0].pid))
        snap = scrape(client)
        assert val(snap, "socketio_connections") == 1
        assert val(snap, "orders_placed_total", mode="paper") == 4
    finally:
        app.config["PROMETHEUS_MULTIPROC_DIR"] = None
        del os.environ["PROMETHEUS_MULTIPROC_DIR"]


def test_a_process_started_before_the_directory_exists_does_not_crash(tmp_path):
    """`flask db upgrade` or a job worker may start before gunicorn made PROMETHEUS_MULTIPROC_DIR:
    prometheus_client would fail opening its files there; the metrics module creates it first."""
    import os
    import subprocess
    import sys

    absent = tmp_path / "not" / "yet"
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(absent),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    code = "import backend.realtime.feed as f; f.FEED_TICKS.inc(); print('ok')"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert any(absent.glob("counter_*.db"))
