"""Admin users and audit endpoints: RBAC, pagination, role changes, audit chain."""

from backend.extensions import db
from backend.models import AuditLog


def test_trader_and_viewer_get_403(client, trader, make_user):
    _, t_headers = trader
    _, v_headers = make_user("viewer")
    for headers in (t_headers, v_headers):
        assert client.get("/api/v1/admin/users", headers=headers).status_code == 403
        assert client.get("/api/v1/admin/audit", headers=headers).status_code == 403


def test_list_users_paginates_with_cursor(client, admin, make_user):
    _, headers = admin
    for _ in range(5):
        make_user("trader")
    first = client.get("/api/v1/admin/users?limit=4", headers=headers).json
    assert len(first["items"]) == 4 and first["next_cursor"]
    second = client.get(f"/api/v1/admin/users?limit=4&cursor={first['next_cursor']}", headers=headers).json
    assert len(second["items"]) == 2 and second["next_cursor"] is None
    ids = [u["id"] for u in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 6


def test_limit_above_max_is_422(app, client, admin):
    _, headers = admin
    too_many = app.config["PAGINATION_MAX_LIMIT"] + 1
    resp = client.get(f"/api/v1/admin/users?limit={too_many}", headers=headers)
    assert resp.status_code == 422 and "limit" in resp.json["error"]["details"]["fields"]


def test_bad_cursor_is_422(client, admin):
    _, headers = admin
    resp = client.get("/api/v1/admin/users?cursor=!!!", headers=headers)
    assert resp.status_code == 422 and "cursor" in resp.json["error"]["details"]["fields"]


def test_search_users(client, admin, make_user):
    _, headers = admin
    make_user("trader", email="alice@example.com")
    make_user("trader", email="bob@example.com")
    items = client.get("/api/v1/admin/users?q=ALICE", headers=headers).json["items"]
    assert [u["email"] for u in items] == ["alice@example.com"]


def test_role_change_is_audited_and_revokes_tokens(app, client, admin, trader):
    admin_id, headers = admin
    trader_id, trader_headers = trader
    resp = client.patch(f"/api/v1/admin/users/{trader_id}", headers=headers, json={"role": "viewer"})
    assert resp.status_code == 200 and resp.json["role"] == "viewer"
    assert client.get("/api/v1/auth/me", headers=trader_headers).status_code == 401
    with app.app_context():
        row = db.session.query(AuditLog).filter_by(action="user.update").one()
        assert row.actor_id == admin_id and row.target_id == str(trader_id)
        assert row.details == {"role": ["trader", "viewer"]}


def test_deactivate_revokes(client, admin, trader):
    _, headers = admin
    trader_id, trader_headers = trader
    resp = client.patch(f"/api/v1/admin/users/{trader_id}", headers=headers, json={"is_active": False})
    assert resp.status_code == 200 and resp.json["is_active"] is False
    assert client.get("/api/v1/auth/me", headers=trader_headers).json["error"]["code"] in (
        "USER_INACTIVE",
        "TOKEN_REVOKED",
    )


def test_bad_role_is_422_and_changes_nothing(client, admin, trader):
    _, headers = admin
    trader_id, trader_headers = trader
    resp = client.patch(f"/api/v1/admin/users/{trader_id}", headers=headers, json={"role": "god"})
    assert resp.status_code == 422 and "role" in resp.json["error"]["details"]["fields"]
    assert client.get("/api/v1/auth/me", headers=trader_headers).json["role"] == "trader"


def test_admin_cannot_demote_self(client, admin):
    admin_id, headers = admin
    resp = client.patch(f"/api/v1/admin/users/{admin_id}", headers=headers, json={"role": "trader"})
    assert resp.status_code == 422


def test_audit_filter_and_verify_detects_tampering(app, client, admin, trader):
    _, headers = admin
    client.post("/api/v1/auth/login", json={"email": "trader1@example.com", "password": "wrong-password"})
    rows = client.get("/api/v1/admin/audit?action=auth.login_failed", headers=headers).json["items"]
    assert rows and all(r["action"] == "auth.login_failed" for r in rows)
    assert client.get("/api/v1/admin/audit/verify", headers=headers).json["ok"] is True
    with app.app_context():
        row = db.session.query(AuditLog).order_by(AuditLog.id).first()
        row.details = {"forged": True}
        db.session.commit()
        bad_id = row.id
    report = client.get("/api/v1/admin/audit/verify", headers=headers).json
    assert report["ok"] is False and report["first_bad_id"] == bad_id


def test_audit_time_filter_validates_dates(client, admin):
    _, headers = admin
    resp = client.get("/api/v1/admin/audit?from=yesterday", headers=headers)
    assert resp.status_code == 422 and "from" in resp.json["error"]["details"]["fields"]


def test_cursor_with_a_non_integer_position_is_422(client, admin):
    from backend.api.common import encode_cursor

    _, headers = admin
    for forged in ({"id": "1 OR 1=1"}, {"id": True}, {"x": 1}):
        resp = client.get(f"/api/v1/admin/users?cursor={encode_cursor(forged)}", headers=headers)
        assert resp.status_code == 422 and "cursor" in resp.json["error"]["details"]["fields"]
