"""Issue 17: 409 is documented only where the operation can answer it (``@conflicts`` per route),
and an undeclared 409 fails the request under TESTING, so the declarations follow the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from backend.domain.errors import Conflict

ROOT = Path(__file__).resolve().parents[2]


def _ops(client):
    spec = client.get("/api/swagger.json").get_json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if isinstance(op, dict):
                yield method.upper(), path, op


def test_409_only_on_operations_that_declare_it(client):
    with409 = {(m, p) for m, p, op in _ops(client) if "409" in op["responses"]}
    assert ("PATCH", "/v1/orders/{order_id}") in with409
    assert ("POST", "/v1/auth/register") in with409
    assert ("GET", "/v1/backtest/{job_id}/trades") in with409  # a read can conflict (job not ready)
    for never in (("GET", "/v1/orders"), ("POST", "/v1/auth/login"), ("POST", "/v1/market-data/quotes")):
        assert never not in with409
    writes = {(m, p) for m, p, _ in _ops(client) if m in {"POST", "PUT", "PATCH", "DELETE"}}
    assert len(with409) < len(writes) / 2, "409 is documented almost everywhere again"


def test_each_documented_409_names_documented_codes(client):
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", (ROOT / "docs" / "errors.md").read_text()))
    for method, path, op in _ops(client):
        if "409" in op["responses"]:
            codes = re.findall(r"`([A-Z][A-Z0-9_]+)`", op["responses"]["409"]["description"])
            assert codes and set(codes) <= documented, (method, path, codes)


def test_an_undeclared_409_fails_loudly_in_tests(client, trader, monkeypatch):
    from backend.services import watchlists

    def conflict(*_a, **_k):
        raise Conflict("made up", code="WATCHLIST_NAME_TAKEN")

    monkeypatch.setattr(watchlists, "list_for", conflict)
    _, h = trader
    with pytest.raises(AssertionError, match="without declaring it"):
        client.get("/api/v1/watchlists", headers=h)


def test_a_declared_409_is_answered(client, trader):
    _, h = trader
    assert client.post("/api/v1/watchlists", json={"name": "x"}, headers=h).status_code == 201
    r = client.post("/api/v1/watchlists", json={"name": "x"}, headers=h)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "WATCHLIST_NAME_TAKEN"
