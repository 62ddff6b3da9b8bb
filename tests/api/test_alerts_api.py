"""Alerts API: CRUD + pagination, pause/resume, test fire, history, webhook secret; admin ops RBAC."""

from decimal import Decimal

import pytest

from backend.services import alerts


@pytest.fixture(autouse=True)
def fresh_evaluator(app, monkeypatch):
    ev = alerts.AlertEvaluator(app)
    monkeypatch.setitem(app.extensions, "alerts", ev)
    monkeypatch.setattr(alerts, "emit_alert", lambda uid, payload: None)
    return ev


def create(client, headers, **kw):
    body = {"symbol": "sbin", "kind": "price_above", "params": {"level": "800"}, **kw}
    return client.post("/api/v1/alerts", json=body, headers=headers)


def test_crud_and_pagination(client, trader):
    _, h = trader
    ids = []
    for lvl in (800, 810, 820):
        r = create(client, h, params={"level": lvl}, name=f"L{lvl}")
        assert r.status_code == 201, r.json
        ids.append(r.json["id"])
    assert (
        r.json["symbol"] == "SBIN" and r.json["params"] == {"level": "820"} and r.json["status"] == "active"
    )
    page1 = client.get("/api/v1/alerts?limit=2", headers=h).json
    assert [a["id"] for a in page1["items"]] == [ids[2], ids[1]]
    page2 = client.get(f"/api/v1/alerts?limit=2&cursor={page1['next_cursor']}", headers=h).json
    assert [a["id"] for a in page2["items"]] == [ids[0]] and page2["next_cursor"] is None
    r = client.patch(
        f"/api/v1/alerts/{ids[0]}", json={"params": {"level": "900"}, "recurring": True}, headers=h
    )
    assert r.status_code == 200 and r.json["params"] == {"level": "900"} and r.json["recurring"] is True
    assert client.delete(f"/api/v1/alerts/{ids[0]}", headers=h).status_code == 204
    assert client.get(f"/api/v1/alerts/{ids[0]}", headers=h).status_code == 404


def test_validation_errors_name_the_field_and_change_nothing(client, trader):
    _, h = trader
    r = create(client, h, kind="nope")
    assert r.status_code == 422 and "kind" in r.json["error"]["details"]["fields"]
    r = create(client, h, params={"level": "-5"})
    assert r.status_code == 422 and "params" in r.json["error"]["details"]["fields"]
    r = create(client, h, webhook_url="http://169.254.169.254/latest/meta-data")
    assert r.status_code == 422 and "webhook_url" in r.json["error"]["details"]["fields"]
    assert client.get("/api/v1/alerts", headers=h).json["items"] == []


def test_other_users_rules_are_invisible(client, make_user):
    _, h1 = make_user("trader")
    _, h2 = make_user("trader")
    rid = create(client, h1).json["id"]
    assert client.get(f"/api/v1/alerts/{rid}", headers=h2).status_code == 404
    assert client.post(f"/api/v1/alerts/{rid}/pause", headers=h2).status_code == 404
    assert client.delete(f"/api/v1/alerts/{rid}", headers=h2).status_code == 404


def test_viewer_can_read_but_not_create(client, make_user):
    _, h = make_user("viewer")
    assert client.get("/api/v1/alerts", headers=h).status_code == 200
    assert create(client, h).status_code == 403


def test_pause_resume_test_fire_and_history(client, trader, fresh_evaluator, app):
    uid, h = trader
    rid = create(client, h, recurring=True).json["id"]
    assert client.post(f"/api/v1/alerts/{rid}/pause", headers=h).json["status"] == "paused"
    assert client.get("/api/v1/alerts?status=paused", headers=h).json["items"][0]["id"] == rid
    assert client.post(f"/api/v1/alerts/{rid}/resume", headers=h).json["status"] == "active"
    r = client.post(f"/api/v1/alerts/{rid}/test", headers=h)
    assert r.status_code == 201 and r.json["is_test"] is True and r.json["rule_id"] == rid
    from datetime import UTC, datetime

    from backend.domain.market.types import Tick

    with app.app_context():
        p = Decimal("801.5")
        fresh_evaluator.on_tick(Tick("SBIN", p, p, p, 10, datetime.now(UTC)))
    hist = client.get(f"/api/v1/alerts/history?rule_id={rid}", headers=h).json["items"]
    assert [(x["is_test"], x["price"]) for x in hist] == [(False, "801.5000"), (True, None)]
    assert client.get(f"/api/v1/alerts/{rid}", headers=h).json["fire_count"] == 1


def test_webhook_secret_is_shown_once(client, trader):
    _, h = trader
    assert client.get("/api/v1/alerts/webhook-secret", headers=h).json["configured"] is False
    r = client.post("/api/v1/alerts/webhook-secret/rotate", headers=h)
    assert r.status_code == 200 and r.json["secret"].startswith("whsec_")
    again = client.get("/api/v1/alerts/webhook-secret", headers=h).json
    assert again["configured"] is True and again["secret"] is None


# ------------------------------------------------------------------ admin operations


ADMIN_GETS = [
    "/api/v1/admin/risk/kill-switch",
    "/api/v1/admin/risk/accounts",
    "/api/v1/admin/ops/health",
    "/api/v1/admin/ops/cache",
    "/api/v1/admin/ops/feed",
    "/api/v1/admin/ops/jobs",
    "/api/v1/admin/ops/broker",
    "/api/v1/admin/ops/config",
    "/api/v1/admin/ops/version",
]


@pytest.mark.parametrize("path", ADMIN_GETS)
def test_admin_ops_rbac(client, trader, admin, path):
    assert client.get(path, headers=trader[1]).status_code == 403
    assert client.get(path, headers=admin[1]).status_code == 200


def test_admin_writes_are_forbidden_to_traders(client, trader):
    h = trader[1]
    assert client.put("/api/v1/admin/risk/kill-switch", json={"on": True}, headers=h).status_code == 403
    assert client.post("/api/v1/admin/ops/cache/flush", json={}, headers=h).status_code == 403
    assert client.post("/api/v1/admin/ops/feed/restart", headers=h).status_code == 403
    assert client.post("/api/v1/admin/risk/accounts/1/reset-breaker", headers=h).status_code == 403


def test_kill_switch_roundtrip_is_audited(client, admin):
    h = admin[1]
    r = client.put("/api/v1/admin/risk/kill-switch", json={"on": True, "reason": "drill"}, headers=h)
    assert r.status_code == 200 and r.json["on"] is True and r.json["reason"] == "drill"
    assert client.get("/api/v1/admin/risk/kill-switch", headers=h).json["on"] is True
    assert client.put("/api/v1/admin/risk/kill-switch", json={"on": False}, headers=h).json["on"] is False
    audit = client.get("/api/v1/admin/audit?action=trading.global_kill_switch", headers=h).json["items"]
    assert [a["details"]["on"] for a in audit] == [False, True]
    assert client.put("/api/v1/admin/risk/kill-switch", json={"on": "maybe"}, headers=h).status_code == 422


def test_cache_flush_counts_and_audits(client, admin, app):
    from backend.services.cache import get_cache

    with app.app_context():
        cache = get_cache()
        cache.set("quote:SBIN", Decimal("1"), ttl=60)
        cache.set("quote:TCS", Decimal("2"), ttl=60)
        cache.set("ltp:SBIN", Decimal("3"), ttl=60)
    r = client.post("/api/v1/admin/ops/cache/flush", json={"namespace": "quote"}, headers=admin[1])
    assert r.json == {"namespace": "quote", "removed": 2}
    with app.app_context():
        assert get_cache().get("ltp:SBIN") == Decimal("3")
    assert client.get("/api/v1/admin/audit?action=ops.cache_flush", headers=admin[1]).json["items"]


def test_config_is_redacted(client, admin, app):
    cfg = client.get("/api/v1/admin/ops/config", headers=admin[1]).json["config"]
    for key in ("SECRET_KEY", "JWT_SECRET_KEY", "TOKEN_ENCRYPTION_KEYS"):
        assert cfg[key] == "[REDACTED]"
    assert app.config["SECRET_KEY"] not in str(cfg)
    assert cfg["PAGINATION_MAX_LIMIT"] == app.config["PAGINATION_MAX_LIMIT"]


def test_config_masks_passwords_in_urls(app):
    from backend.services import admin_ops

    with app.test_request_context():
        app.config["X_TEST_URL"] = "postgresql://u:hunter2@db:5432/x"
        try:
            out = admin_ops.redacted_config()
        finally:
            del app.config["X_TEST_URL"]
    assert out["X_TEST_URL"] == "postgresql://u:[REDACTED]@db:5432/x"


def test_version_and_health(client, admin):
    import sys

    v = client.get("/api/v1/admin/ops/version", headers=admin[1]).json
    assert v["python"] == sys.version.split()[0] and v["packages"]["flask"] and v["uptime_seconds"] >= 0
    hl = client.get("/api/v1/admin/ops/health", headers=admin[1]).json
    names = [c["name"] for c in hl["components"]]
    assert names == ["database", "redis", "feed", "broker", "jobs", "workers", "alerts"]
    assert hl["components"][0]["status"] == "ok"


def test_feed_restart_without_a_running_feed_is_503(client, admin):
    assert client.post("/api/v1/admin/ops/feed/restart", headers=admin[1]).status_code == 503


def test_breaker_reset_unknown_account_is_404(client, admin):
    assert client.post("/api/v1/admin/risk/accounts/999/reset-breaker", headers=admin[1]).status_code == 404
