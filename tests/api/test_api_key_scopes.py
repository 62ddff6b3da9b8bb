"""A read-only API key reads and never changes state (issue 17: a read key minted a trade key and traded)."""

import re

import pytest

STATE_CHANGING = ("post", "put", "patch", "delete")
# Operations that compute and change nothing: a read key may call them.
READ_ONLY_POSTS = {
    "/api/v1/orders/preview",
    "/api/v1/analytics/simulate",
    "/api/v1/strategies/options/{name}/analyze",
    "/api/v1/market-data/ltp",  # quotes by POST: symbol lists too long for a request line
    "/api/v1/market-data/quotes",
    "/api/v1/indices/{index_id}/simulate",  # an investment what-if: computes, stores nothing
}
# Answered before credentials matter (they take none).
PUBLIC = {
    "/api/v1/auth/login",
    "/api/v1/auth/register",
    "/api/v1/auth/refresh",
    "/api/v1/auth/browser/login",
    "/api/v1/auth/browser/refresh",
    "/api/v1/signals/webhook/{token}",  # its URL token is the credential (docs/brokers.md, Signals)
}


def _key(client, headers, scopes):
    r = client.post("/api/v1/auth/api-keys", json={"name": "bot", "scopes": scopes}, headers=headers)
    assert r.status_code == 201, r.get_json()
    return {"X-API-Key": r.get_json()["key"]}


def _state_changing_operations(client):
    spec = client.get("/api/swagger.json").get_json()
    base = spec.get("basePath", "/api").rstrip("/")
    for path, ops in spec["paths"].items():
        full = base + path
        for method in STATE_CHANGING:
            if method in ops and full not in PUBLIC and not (method == "post" and full in READ_ONLY_POSTS):
                yield method, full


def _concrete(path):
    return re.sub(r"{[^}]+}", "1", path)


@pytest.mark.parametrize("role", ["trader", "admin"])
def test_read_key_gets_403_on_every_state_changing_operation(client, make_user, role):
    _, headers = make_user(role)
    read_key = _key(client, headers, ["read"])
    ops = list(_state_changing_operations(client))
    assert len(ops) >= 40  # the walk really covers the spec
    allowed = []
    for method, path in ops:
        r = client.open(_concrete(path), method=method.upper(), json={}, headers=read_key)
        if r.status_code != 403:
            allowed.append(f"{method.upper()} {path} -> {r.status_code}")
    assert not allowed, "\n".join(allowed)


def test_read_key_can_still_read_and_preview(client, trader):
    _, headers = trader
    read_key = _key(client, headers, ["read"])
    assert client.get("/api/v1/orders", headers=read_key).status_code == 200
    r = client.post("/api/v1/orders/preview", json={}, headers=read_key)
    assert r.status_code == 422  # past the scope check, stopped by validation


def test_read_key_cannot_mint_a_trade_key_nor_any_key(client, trader):
    _, headers = trader
    read_key = _key(client, headers, ["read"])
    for scopes in (["trade"], ["read", "trade"], ["read"]):
        r = client.post("/api/v1/auth/api-keys", json={"name": "esc", "scopes": scopes}, headers=read_key)
        assert r.status_code == 403 and r.get_json()["error"]["code"] == "SESSION_REQUIRED"
    trade_key = _key(client, headers, ["read", "trade"])
    r = client.post("/api/v1/auth/api-keys", json={"name": "esc", "scopes": ["read"]}, headers=trade_key)
    assert r.status_code == 403
    listed = client.get("/api/v1/auth/api-keys", headers=headers).get_json()
    assert sorted(k["name"] for k in listed) == ["bot", "bot"]


def test_read_key_cannot_place_order_basket_strategy_or_snapshot(client, trader):
    _, headers = trader
    read_key = _key(client, headers, ["read"])
    attacks = [
        ("/api/v1/orders", {"symbol": "SBIN", "side": "BUY", "quantity": 1, "order_type": "MARKET"}),
        ("/api/v1/strategies/options/straddle/place", {"params": {}, "product": "NRML"}),
        ("/api/v1/strategies", {"name": "s", "kind": "signal", "strategy": "sma_cross", "params": {}}),
        ("/api/v1/analytics/snapshots", {}),
        ("/api/v1/backtest", {}),
    ]
    for path, body in attacks:
        r = client.post(path, json=body, headers=read_key)
        assert r.status_code == 403 and r.get_json()["error"]["code"] == "INSUFFICIENT_SCOPE", path


def test_admin_api_key_cannot_administer(client, make_user):
    _, headers = make_user("admin")
    trade_key = _key(client, headers, ["read", "trade"])
    assert client.get("/api/v1/admin/users", headers=trade_key).status_code == 403
    r = client.put("/api/v1/admin/risk/kill-switch", json={"engaged": True}, headers=trade_key)
    assert r.status_code == 403
    assert client.get("/api/v1/admin/users", headers=headers).status_code == 200


def test_api_key_cannot_change_password_or_logout(client, trader):
    _, headers = trader
    trade_key = _key(client, headers, ["read", "trade"])
    body = {"current_password": "correct-horse-battery", "new_password": "another-long-password"}
    r = client.patch("/api/v1/auth/me/password", json=body, headers=trade_key)
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "SESSION_REQUIRED"
    assert client.post("/api/v1/auth/logout", headers=trade_key).status_code == 403
