"""Admin HTML pages: login (admin only, rate-limited), cookie flags, CSRF on every form, page access."""

import re

import pytest

PASSWORD = "correct-horse-battery"
PAGES = ["/admin/health", "/admin/users", "/admin/audit", "/admin/risk", "/admin/jobs"]
# Every POST form of the admin pages, with a valid body apart from the CSRF token.
FORMS = [
    ("/admin/logout", {}),
    ("/admin/cache/flush", {"namespace": "quote"}),
    ("/admin/users/{uid}", {"role": "viewer", "is_active": "1"}),
    ("/admin/risk/kill-switch", {"on": "1", "confirm": "HALT"}),
    ("/admin/risk/accounts/1/reset", {}),
]


def csrf(client, path="/admin/login"):
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(client, email, password=PASSWORD):
    token = csrf(client)
    return client.post("/admin/login", data={"email": email, "password": password, "csrf_token": token})


@pytest.fixture
def admin_client(app, make_user):
    make_user("admin", email="root@example.com")
    client = app.test_client()
    resp = login(client, "root@example.com")
    assert resp.status_code == 302 and resp.headers["Location"] == "/admin/health"
    return client


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_is_redirected_to_login(client, path):
    resp = client.get(path)
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/admin/login?next=")


def test_login_page_and_static_are_public_and_csp_clean(client):
    resp = client.get("/admin/login")
    assert resp.status_code == 200 and "Administrator log in" in resp.get_data(as_text=True)
    assert "script-src 'self' 'nonce-" in resp.headers["Content-Security-Policy"]
    assert client.get("/admin/static/admin.css").status_code == 200
    html = resp.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html  # no CDN


def test_trader_cannot_log_in(client, make_user):
    make_user("trader", email="t@example.com")
    resp = login(client, "t@example.com")
    assert resp.status_code == 401 and "not an administrator" in resp.get_data(as_text=True)
    assert client.get("/admin/health").status_code == 302


def test_wrong_password_refused(client, make_user):
    make_user("admin", email="a@example.com")
    assert login(client, "a@example.com", "wrong-password-123").status_code == 401


def test_session_cookie_flags(app, make_user):
    make_user("admin", email="c@example.com")
    client = app.test_client()
    token = csrf(client)
    resp = client.post(
        "/admin/login", data={"email": "c@example.com", "password": PASSWORD, "csrf_token": token}
    )
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    https = app.test_client()
    token = csrf(https)
    resp = https.post(
        "/admin/login",
        data={"email": "c@example.com", "password": PASSWORD, "csrf_token": token},
        base_url="https://localhost",
    )
    assert "Secure" in resp.headers["Set-Cookie"]


def test_login_without_csrf_is_refused(client, make_user):
    make_user("admin", email="d@example.com")
    client.get("/admin/login")
    resp = client.post("/admin/login", data={"email": "d@example.com", "password": PASSWORD})
    assert resp.status_code == 400


def test_login_is_rate_limited(app, client, make_user, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_ADMIN_LOGIN", "3 per minute")
    codes = [login(client, "nobody@example.com", "x").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]


@pytest.mark.parametrize("path", PAGES)
def test_pages_render_for_admin(admin_client, path):
    resp = admin_client.get(path)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    html = resp.get_data(as_text=True)
    assert "Log out root@example.com" in html
    for m in re.finditer(r"<script([^>]*)>", html):
        assert "nonce=" in m.group(1)  # every inline script carries the CSP nonce


def test_health_page_shows_component_colours(admin_client):
    html = admin_client.get("/admin/health").get_data(as_text=True)
    assert re.search(r'class="card ok" data-component="database"', html)
    assert 'http-equiv="refresh"' in html


@pytest.mark.parametrize("path,data", FORMS, ids=[f[0] for f in FORMS])
def test_every_form_requires_csrf(admin_client, make_user, path, data):
    uid, _ = make_user("trader")
    url = path.format(uid=uid)
    assert admin_client.post(url, data=data).status_code == 400
    assert admin_client.post(url, data={**data, "csrf_token": "forged"}).status_code == 400
    assert admin_client.get("/admin/health").status_code == 200  # still logged in: nothing happened


def test_user_role_change_via_form(admin_client, make_user, app):
    from backend.extensions import db
    from backend.models import User

    uid, _ = make_user("trader")
    token = csrf(admin_client, "/admin/users")
    resp = admin_client.post(
        f"/admin/users/{uid}", data={"role": "viewer", "is_active": "0", "csrf_token": token}
    )
    assert resp.status_code == 302
    with app.app_context():
        user = db.session.get(User, uid)
        assert (user.role, user.is_active) == ("viewer", False)


def test_kill_switch_form_needs_typed_confirmation(admin_client, app):
    from backend.services.trading import risk

    token = csrf(admin_client, "/admin/risk")
    admin_client.post("/admin/risk/kill-switch", data={"on": "1", "confirm": "nope", "csrf_token": token})
    with app.app_context():
        assert risk.get_global_kill_switch() is False
    resp = admin_client.post(
        "/admin/risk/kill-switch", data={"on": "1", "confirm": "halt", "reason": "drill", "csrf_token": token}
    )
    assert resp.status_code == 302
    with app.app_context():
        assert risk.get_global_kill_switch() is True
    assert "HALTED" in admin_client.get("/admin/risk").get_data(as_text=True)


def test_demoted_admin_loses_the_session(admin_client, app):
    from backend.extensions import db
    from backend.models import User
    from backend.services.auth import revoke_all_tokens

    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "root@example.com"))
        revoke_all_tokens(user)  # bumps token_version, as deactivation or a role change does
        db.session.commit()
    assert admin_client.get("/admin/health").status_code == 302


def test_logout(admin_client):
    token = csrf(admin_client, "/admin/health")
    assert admin_client.post("/admin/logout", data={"csrf_token": token}).status_code == 302
    assert admin_client.get("/admin/health").status_code == 302


def test_open_redirect_is_refused(app, make_user):
    make_user("admin", email="r@example.com")
    client = app.test_client()
    token = csrf(client)
    resp = client.post(
        "/admin/login",
        data={
            "email": "r@example.com",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/x",
        },
    )
    assert resp.headers["Location"] == "/admin/health"


def test_a_cookie_replayed_after_logout_is_dead(app, admin_client):
    """Issue 17: the signed cookie alone used to keep working after logout."""
    stolen = admin_client.get_cookie("tp_admin")
    assert stolen is not None  # the cookie docs/admin.md names is the one set
    token = csrf(admin_client, "/admin/health")
    assert admin_client.post("/admin/logout", data={"csrf_token": token}).status_code == 302
    replay = app.test_client()
    replay.set_cookie("tp_admin", stolen.value)
    resp = replay.get("/admin/health")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/admin/login")
