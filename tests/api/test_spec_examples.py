"""Issue 17: every body-taking operation in /api/swagger.json has an example that works on a fresh
`make run` (simulated market, the default paper account, nothing created beforehand).

The test walks the spec: each operation with a body must have an example (a definition's
``example``, or ``x-example`` on a multipart form field) and must be in ``STEPS``, which posts the
examples as a freshly registered trader in an order a person trying the API would follow. Only
values no static example can know (a path id, the refresh token just issued) are filled in.
Each answer must be the step's documented success status: every example works as it stands.
"""

from __future__ import annotations

import copy
import io
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CSV = (ROOT / "tests" / "data" / "GOOG.csv").read_bytes()


def _spec(client) -> dict:
    return client.get("/api/swagger.json").get_json()


def _body_operations(spec: dict) -> dict[tuple[str, str], dict]:
    out = {}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if not isinstance(op, dict):
                continue
            params = op.get("parameters", []) + ops.get("parameters", [])
            if any(p.get("in") in ("body", "formData") for p in params):
                out[(method.upper(), "/api" + path)] = op
    return out


def _example(spec: dict, op: dict) -> tuple[str, dict]:
    """("json", body) or ("form", fields) from the operation's documented example."""
    params = op.get("parameters", [])
    body = next((p for p in params if p.get("in") == "body"), None)
    if body is not None:
        schema = body["schema"]
        if "$ref" in schema:
            schema = spec["definitions"][schema["$ref"].rsplit("/", 1)[1]]
        assert "example" in schema, f"no example for {op.get('operationId')}"
        if "text/csv" in op.get("consumes", []):
            # the raw CSV body's example is a few rows; the walk sends the whole GOOG file with it
            query = {p["name"]: p["x-example"] for p in params if p.get("in") == "query" and "x-example" in p}
            assert query, f"no x-example on the query of {op.get('operationId')}"
            return "csv", query
        return "json", copy.deepcopy(schema["example"])
    form = {p["name"]: p for p in params if p.get("in") == "formData"}
    examples = {n: p["x-example"] for n, p in form.items() if p.get("type") != "file" and "x-example" in p}
    assert examples, f"no x-example on the form fields of {op.get('operationId')}"
    return "form", examples


class Walk:
    def __init__(self, app, client, make_user) -> None:
        self.app, self.client = app, client
        _, self.admin = make_user("admin")
        self.state: dict = {}
        self.trader: dict[str, str] = {}

    def quote(self, symbol: str) -> Decimal:
        r = self.client.get(f"/api/v1/market-data/quotes?symbols={symbol}", headers=self.trader)
        return Decimal(r.get_json()["items"][0]["ltp"])

    def resting_order(self) -> int:
        """A working LIMIT BUY below the market, for the modify example (a MARKET order fills)."""
        price = (self.quote("SBIN") * Decimal("0.97") / Decimal("0.05")).quantize(
            Decimal(1), ROUND_DOWN
        ) * Decimal("0.05")
        body = {
            "symbol": "SBIN",
            "side": "BUY",
            "type": "LIMIT",
            "product": "D",
            "quantity": 1,
            "price": str(price),
        }
        r = self.client.post("/api/v1/orders", json=body, headers=self.trader)
        assert r.status_code == 201 and r.get_json()["status"] == "open", r.get_json()
        return r.get_json()["id"]

    def rotate_signal_token(self) -> str:
        r = self.client.post("/api/v1/signals/token/rotate", headers=self.trader)
        assert r.status_code == 200, r.get_json()
        return r.get_json()["token"]


def _login(w: Walk, _body, r) -> None:
    tokens = r.get_json()
    w.state["refresh_token"] = tokens["refresh_token"]
    w.trader = {"Authorization": f"Bearer {tokens['access_token']}"}


def _keep(key: str):
    def hook(w: Walk, _body, r) -> None:
        w.state[key] = r.get_json()["id"]

    return hook


def _job_succeeds(w: Walk, _body, r) -> None:
    """The example must not only be accepted: the backtest it queues must run to success."""
    from backend.extensions import db
    from backend.services import jobs

    job_id = r.get_json()["id"]
    with w.app.app_context():
        db.session.commit()
        run = jobs.runner(w.app)
        if isinstance(run, jobs.EmbeddedRunner):
            run.wait(job_id, 300)
        else:  # RQ (with Redis): run it here, as `flask jobs worker` would
            jobs.execute_job(job_id)
    got = w.client.get(f"/api/v1/backtest/{job_id}", headers=w.trader).get_json()
    assert got["status"] == "succeeded", got


# (method, path, who, status, fill(w, body) -> path params, after(w, body, response))
# who: None (public), "trader" (the user the examples register), "admin".
STEPS: list[tuple] = [
    ("POST", "/api/v1/auth/register", None, 201, None, None),
    ("POST", "/api/v1/auth/login", None, 200, None, _login),
    ("POST", "/api/v1/auth/browser/login", None, 200, None, None),
    (
        "POST",
        "/api/v1/auth/refresh",
        None,
        200,
        lambda w, b: b.update(refresh_token=w.state["refresh_token"]),
        _login,
    ),
    ("POST", "/api/v1/auth/api-keys", "trader", 201, None, None),
    ("POST", "/api/v1/market-data/quotes", "trader", 200, None, None),
    ("POST", "/api/v1/market-data/ltp", "trader", 200, None, None),
    ("POST", "/api/v1/orders/preview", "trader", 200, None, None),
    ("POST", "/api/v1/orders", "trader", 201, None, None),
    ("PATCH", "/api/v1/orders/{order_id}", "trader", 200, lambda w, b: {"order_id": w.resting_order()}, None),
    (
        "PUT",
        "/api/v1/portfolio/positions/{symbol}/stops",
        "trader",
        200,
        lambda w, b: {"symbol": "SBIN"},
        None,
    ),
    ("POST", "/api/v1/portfolio/accounts", "trader", 201, None, _keep("account_id")),
    ("PATCH", "/api/v1/portfolio/accounts/{account_id}", "trader", 200, None, None),
    ("PATCH", "/api/v1/portfolio/accounts/{account_id}/risk", "trader", 200, None, None),
    ("POST", "/api/v1/portfolio/accounts/{account_id}/kill-switch", "trader", 200, None, None),
    ("POST", "/api/v1/portfolio/accounts/{account_id}/reset", "trader", 200, None, None),
    ("POST", "/api/v1/alerts", "trader", 201, None, _keep("rule_id")),
    ("PATCH", "/api/v1/alerts/{rule_id}", "trader", 200, None, None),
    ("POST", "/api/v1/analytics/simulate", "trader", 200, None, None),
    ("POST", "/api/v1/analytics/snapshots", "trader", 201, None, None),
    ("POST", "/api/v1/watchlists", "trader", 201, None, _keep("watchlist_id")),
    ("PATCH", "/api/v1/watchlists/{watchlist_id}", "trader", 200, None, None),
    ("PUT", "/api/v1/watchlists/{watchlist_id}/symbols", "trader", 200, None, None),
    ("POST", "/api/v1/watchlists/{watchlist_id}/symbols", "trader", 201, None, None),
    (
        "PUT",
        "/api/v1/watchlists/order",
        "trader",
        200,
        lambda w, b: b.update(ids=[w.state["watchlist_id"]]),
        None,
    ),
    ("POST", "/api/v1/strategies", "trader", 201, None, _keep("strategy_id")),
    ("PATCH", "/api/v1/strategies/{strategy_id}", "trader", 200, None, None),
    ("POST", "/api/v1/strategies/{strategy_id}/deploy", "trader", 201, None, None),
    (
        "POST",
        "/api/v1/strategies/options/{name}/analyze",
        "trader",
        200,
        lambda w, b: {"name": "iron_condor"},
        None,
    ),
    (
        "POST",
        "/api/v1/strategies/options/{name}/place",
        "trader",
        201,
        lambda w, b: {"name": "iron_condor"},
        None,
    ),
    ("POST", "/api/v1/backtest", "trader", 202, None, _job_succeeds),
    ("POST", "/api/v1/backtest/sweeps", "trader", 202, None, _job_succeeds),
    ("POST", "/api/v1/backtest/upload", "trader", 202, None, _job_succeeds),
    ("POST", "/api/v1/backtest/upload/csv", "trader", 202, None, _job_succeeds),
    ("POST", "/api/v1/backtest/portfolio", "trader", 202, None, _job_succeeds),
    ("POST", "/api/v1/indices", "trader", 201, None, _keep("index_id")),
    ("POST", "/api/v1/indices/{index_id}/compute", "trader", 200, None, None),
    ("POST", "/api/v1/indices/{index_id}/simulate", "trader", 200, None, None),
    ("POST", "/api/v1/signals/mappings", "trader", 201, None, _keep("mapping_id")),
    ("PATCH", "/api/v1/signals/mappings/{mapping_id}", "trader", 200, None, None),
    (
        "POST",
        "/api/v1/signals/webhook/{token}",
        None,
        201,
        lambda w, b: {"token": w.rotate_signal_token()},
        None,
    ),
    ("PUT", "/api/v1/signals/hmac", "trader", 200, None, None),
    ("PUT", "/api/v1/broker/market-data-connection", "admin", 204, None, None),
    ("POST", "/api/v1/broker/reconcile", "trader", 200, None, None),
    ("POST", "/api/v1/admin/ops/cache/flush", "admin", 200, None, None),
    (
        "PATCH",
        "/api/v1/admin/users/{user_id}",
        "admin",
        200,
        lambda w, b: {"user_id": w.state["user_id"]},
        None,
    ),
    ("PUT", "/api/v1/admin/risk/kill-switch", "admin", 200, None, None),
    ("PATCH", "/api/v1/auth/me/password", "trader", 200, None, None),  # last: it ends the sessions
]


def test_every_body_taking_operation_has_an_example_and_a_step(client):
    ops = _body_operations(_spec(client))
    spec = _spec(client)
    for op in ops.values():
        _example(spec, op)  # asserts the example exists
    stepped = [(m, p) for m, p, *_ in STEPS]
    assert len(stepped) == len(set(stepped))
    assert sorted(stepped) == sorted(ops), "STEPS and the spec's body-taking operations differ"


@pytest.mark.usefixtures("_fresh_history")
def test_each_example_works_on_a_fresh_install(app, client, make_user):
    spec = _spec(client)
    ops = _body_operations(spec)
    w = Walk(app, client, make_user)
    for method, path, who, ok, fill, after in STEPS:
        kind, body = _example(spec, ops[(method, path)])
        params = dict(w.state)
        if fill is not None:
            params.update(fill(w, body) or {})
        url = path.format(**params)
        headers = {None: {}, "trader": w.trader, "admin": w.admin}[who]
        if kind == "json":
            r = client.open(url, method=method, json=body, headers=headers)
        elif kind == "csv":
            r = client.open(
                url, method=method, query_string=body, data=CSV, headers=headers, content_type="text/csv"
            )
        else:
            data = {**body, "file": (io.BytesIO(CSV), "GOOG.csv")}
            r = client.open(
                url, method=method, data=data, headers=headers, content_type="multipart/form-data"
            )
        assert r.status_code == ok, (method, path, body, r.status_code, r.get_json(silent=True))
        assert str(ok) in ops[(method, path)]["responses"]
        if path == "/api/v1/auth/register":
            w.state["user_id"] = r.get_json()["id"]
        if after is not None:
            after(w, body, r)


@pytest.fixture
def _fresh_history(app):
    """Nothing to do on the simulated provider (it makes its own history); kept as the seam where a
    fresh install's data comes from, so the walk documents that it needs no seeding."""
    assert app.config["MARKET_DATA_PROVIDER"] == "simulated"
    yield
