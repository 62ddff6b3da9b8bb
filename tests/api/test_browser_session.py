"""Dashboard sessions: refresh token in an HttpOnly SameSite=Strict cookie, CSRF-bound refresh."""

from __future__ import annotations

BASE = "/api/v1/auth/browser"
PASSWORD = "correct-horse-battery"


def _cookie(client, name, path):
    return client.get_cookie(name, path=path)


def _login(client, email):
    return client.post(f"{BASE}/login", json={"email": email, "password": PASSWORD})


def test_login_sets_httponly_strict_cookie_and_returns_no_refresh_token(client, make_user):
    make_user("trader", email="dash@example.com")
    r = _login(client, "dash@example.com")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert set(body) == {"access_token", "token_type", "expires_in", "csrf_token"}
    set_cookies = r.headers.getlist("Set-Cookie")
    refresh = next(c for c in set_cookies if c.startswith("tp_refresh="))
    assert "HttpOnly" in refresh and "SameSite=Strict" in refresh and "Path=/api/v1/auth/browser" in refresh
    csrf = next(c for c in set_cookies if c.startswith("tp_csrf="))
    assert "HttpOnly" not in csrf and body["csrf_token"] in csrf
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.get_json()["email"] == "dash@example.com"


def test_refresh_needs_the_bound_csrf_header_and_rotates(client, make_user):
    make_user("trader", email="dash2@example.com")
    first = _login(client, "dash2@example.com").get_json()
    r = client.post(f"{BASE}/refresh")
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "CSRF_FAILED"
    r = client.post(f"{BASE}/refresh", headers={"X-CSRF-Token": "0" * 64})
    assert r.status_code == 403
    r = client.post(
        f"{BASE}/refresh", headers={"X-CSRF-Token": first["csrf_token"], "Origin": "https://evil.example"}
    )
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "CSRF_FAILED"

    old_cookie = _cookie(client, "tp_refresh", "/api/v1/auth/browser").value
    r = client.post(f"{BASE}/refresh", headers={"X-CSRF-Token": first["csrf_token"]})
    assert r.status_code == 200, r.get_json()
    second = r.get_json()
    assert second["csrf_token"] != first["csrf_token"]
    assert _cookie(client, "tp_refresh", "/api/v1/auth/browser").value != old_cookie

    # replaying the spent cookie (a stolen copy) revokes the family: the fresh one dies too
    client.set_cookie("tp_refresh", old_cookie, path="/api/v1/auth/browser")
    r = client.post(f"{BASE}/refresh", headers={"X-CSRF-Token": first["csrf_token"]})
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "TOKEN_REUSED"


def test_refresh_without_cookie_is_401(client):
    r = client.post(f"{BASE}/refresh", headers={"X-CSRF-Token": "x"})
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "REFRESH_COOKIE_MISSING"


def test_logout_revokes_and_clears_cookies(client, make_user):
    make_user("trader", email="dash3@example.com")
    body = _login(client, "dash3@example.com").get_json()
    auth = {"Authorization": f"Bearer {body['access_token']}", "X-CSRF-Token": body["csrf_token"]}
    r = client.post(f"{BASE}/logout", headers=auth)
    assert r.status_code == 200
    assert _cookie(client, "tp_refresh", "/api/v1/auth/browser") is None
    assert client.get("/api/v1/auth/me", headers=auth).status_code == 401
    assert client.post(f"{BASE}/refresh", headers={"X-CSRF-Token": body["csrf_token"]}).status_code == 401


def test_bad_login_is_401_and_sets_no_cookie(client, make_user):
    make_user("trader", email="dash4@example.com")
    r = client.post(f"{BASE}/login", json={"email": "dash4@example.com", "password": "wrong-password"})
    assert r.status_code == 401 and not r.headers.getlist("Set-Cookie")
    r = client.post(f"{BASE}/login", json={"email": "not-an-email"})
    assert r.status_code == 422
