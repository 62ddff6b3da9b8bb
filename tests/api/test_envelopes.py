"""Every error status answers with the one envelope, inside and outside the API blueprint."""

import pytest
from flask import Flask

from tests.conftest import app_config


def assert_envelope(resp, status, code=None):
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"code", "message", "details", "request_id"}
    assert err["request_id"] == resp.headers["X-Request-ID"]
    assert isinstance(err["details"], dict) and err["message"]
    if code:
        assert err["code"] == code
    return err


def test_401(client):
    assert_envelope(client.get("/api/v1/auth/me"), 401, "UNAUTHORIZED")


def test_403(client, trader):
    _, headers = trader
    assert_envelope(client.get("/api/v1/admin/users", headers=headers), 403, "FORBIDDEN")


def test_404_outside_api(client):
    assert_envelope(client.get("/definitely/not/here"), 404, "NOT_FOUND")


def test_404_inside_api(client, admin):
    _, headers = admin
    err = assert_envelope(client.get("/api/v1/admin/users/999999", headers=headers), 404, "NOT_FOUND")
    assert "999999" in err["message"]


def test_404_unknown_api_path_has_no_restx_hint(client):
    err = assert_envelope(client.get("/api/v1/auth/nothing"), 404)
    assert "You have requested this URI" not in err["message"]


def test_405(client):
    resp = client.get("/api/v1/auth/login")
    err = assert_envelope(resp, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in err["details"]["allowed"]
    assert "POST" in resp.headers["Allow"]


def test_413(client):
    resp = client.post("/api/v1/auth/login", data=b"x" * (1024 * 1024 + 10), content_type="application/json")
    assert_envelope(resp, 413, "PAYLOAD_TOO_LARGE")


def test_415(client):
    resp = client.post("/api/v1/auth/login", data="email=a", content_type="application/x-www-form-urlencoded")
    assert_envelope(resp, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_400_malformed_json(client):
    resp = client.post("/api/v1/auth/login", data="{not json", content_type="application/json")
    assert_envelope(resp, 400, "BAD_REQUEST")


def test_422_names_fields(client):
    resp = client.post("/api/v1/auth/login", json={"email": "not-an-email"})
    err = assert_envelope(resp, 422, "VALIDATION_ERROR")
    assert set(err["details"]["fields"]) == {"email", "password"}
    assert "email" in err["message"] and "password" in err["message"]


def test_422_on_json_array_body(client):
    resp = client.post("/api/v1/auth/login", json=[1, 2])
    assert_envelope(resp, 422, "VALIDATION_ERROR")


def test_422_unknown_response_field(client, trader):
    _, headers = trader
    resp = client.get("/api/v1/auth/me?fields=email,nosuch", headers=headers)
    err = assert_envelope(resp, 422, "VALIDATION_ERROR")
    assert "nosuch" in err["message"]


def test_fields_selection(client, trader):
    _, headers = trader
    resp = client.get("/api/v1/auth/me?fields=email,role", headers=headers)
    assert resp.status_code == 200 and set(resp.json) == {"email", "role"}


def test_429_with_retry_after(app, client):
    limit = int(app.config["RATELIMIT_LOGIN"].split()[0])
    body = {"email": "nobody@example.com", "password": "whatever-long"}
    statuses = [client.post("/api/v1/auth/login", json=body).status_code for _ in range(limit + 1)]
    assert statuses[:limit] == [401] * limit
    resp = client.post("/api/v1/auth/login", json=body)
    err = assert_envelope(resp, 429, "RATE_LIMITED")
    assert int(resp.headers["Retry-After"]) >= 1
    assert err["details"]


def test_login_limited_per_email_across_ips(app, client):
    limit = int(app.config["RATELIMIT_LOGIN"].split()[0])
    body = {"email": "victim@example.com", "password": "whatever-long"}
    for i in range(limit):
        client.post("/api/v1/auth/login", json=body, environ_base={"REMOTE_ADDR": f"10.0.0.{i + 1}"})
    resp = client.post("/api/v1/auth/login", json=body, environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert_envelope(resp, 429, "RATE_LIMITED")


@pytest.fixture(scope="module")
def boom_app():
    """A separate app with a route that raises, to prove 500s reveal nothing."""
    from backend import create_app

    app = create_app(app_config())

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internal detail: db password=hunter2")

    boom.public = True
    return app


def test_500_reveals_nothing(boom_app, caplog):
    resp = boom_app.test_client().get("/boom")
    err = assert_envelope(resp, 500, "INTERNAL_ERROR")
    assert "hunter2" not in resp.get_data(as_text=True) and "secret" not in err["message"]
    assert any(r.exc_info for r in caplog.records if r.levelname == "ERROR")


def test_request_id_is_echoed(client):
    resp = client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert resp.headers["X-Request-ID"] == "abc-123"
    resp = client.get("/health/live", headers={"X-Request-ID": "bad id with spaces"})
    assert resp.headers["X-Request-ID"] != "bad id with spaces" and len(resp.headers["X-Request-ID"]) == 32


def test_security_headers(client):
    resp = client.get("/api/docs")
    assert resp.status_code == 200
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "cdn" not in csp
    nonce = csp.split("'nonce-")[1].split("'")[0]
    html = resp.get_data(as_text=True)
    assert f'nonce="{nonce}"' in html  # the only inline script carries the nonce
    assert "//cdn" not in html and "unpkg" not in html
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Referrer-Policy"]
    assert "Strict-Transport-Security" not in resp.headers
    https = client.get("/health/live", base_url="https://localhost")
    assert "max-age" in https.headers["Strict-Transport-Security"]


def test_hsts_behind_trusted_proxy():
    from backend import create_app

    app = create_app(app_config(TRUSTED_PROXY_COUNT=1))
    resp = app.test_client().get("/health/live", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" in resp.headers


def test_cors_allow_list():
    from backend import create_app

    app = create_app(app_config(CORS_ORIGINS=["https://dash.example.com"]))
    c = app.test_client()
    ok = c.get("/health/live", headers={"Origin": "https://dash.example.com"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://dash.example.com"
    evil = c.get("/health/live", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in evil.headers


def test_compression(client, admin):
    _, headers = admin
    resp = client.get("/api/swagger.json", headers={"Accept-Encoding": "gzip"})
    assert resp.headers.get("Content-Encoding") == "gzip"


def test_flask_app_type(app):
    assert isinstance(app, Flask)
