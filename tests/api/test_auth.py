"""Every authentication path through the HTTP client."""

import time

import jwt
import pytest

from backend.models import AuditLog, User

PW = "correct-horse-battery"


def login(client, email, password=PW):
    return client.post("/api/v1/auth/login", json={"email": email, "password": password})


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def registered(client):
    r = client.post("/api/v1/auth/register", json={"email": "Trader@Example.com", "password": PW})
    assert r.status_code == 201, r.json
    return "trader@example.com"


def _claims(app, **overrides):
    now = int(time.time())
    claims = {
        "sub": "1",
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "iss": app.config["JWT_ISSUER"],
        "aud": app.config["JWT_AUDIENCE"],
        "jti": "j" * 32,
        "type": "access",
        "tv": 0,
    }
    claims.update(overrides)
    return claims


def test_register_login_me(client, registered):
    r = login(client, registered)
    assert r.status_code == 200
    body = r.json
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    me = client.get("/api/v1/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json["email"] == "trader@example.com" and me.json["role"] == "trader"
    assert "password_hash" not in me.json


def test_register_duplicate_is_409(client, registered):
    r = client.post("/api/v1/auth/register", json={"email": registered, "password": PW})
    assert r.status_code == 409 and r.json["error"]["code"] == "EMAIL_TAKEN"


def test_register_closed_by_config(app, client):
    app.config["OPEN_REGISTRATION"] = False
    try:
        r = client.post("/api/v1/auth/register", json={"email": "x@example.com", "password": PW})
        assert r.status_code == 403 and r.json["error"]["code"] == "REGISTRATION_CLOSED"
    finally:
        app.config["OPEN_REGISTRATION"] = True


def test_wrong_password_is_audited(app, client, registered):
    r = login(client, registered, "wrong-password-123")
    assert r.status_code == 401 and r.json["error"]["code"] == "INVALID_CREDENTIALS"
    with app.app_context():
        from backend.extensions import db

        actions = [a.action for a in db.session.query(AuditLog).all()]
    assert "auth.login_failed" in actions


def test_expired_token(app, client, registered):
    claims = _claims(
        app, exp=int(time.time()) - 120, iat=int(time.time()) - 1000, nbf=int(time.time()) - 1000
    )
    token = jwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256")
    r = client.get("/api/v1/auth/me", headers=bearer(token))
    assert r.status_code == 401 and r.json["error"]["code"] == "TOKEN_EXPIRED"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_tampered_token(client, registered):
    token = login(client, registered).json["access_token"]
    head, payload, sig = token.split(".")
    tampered = f"{head}.{payload[:-2]}xx.{sig}"
    r = client.get("/api/v1/auth/me", headers=bearer(tampered))
    assert r.status_code == 401 and r.json["error"]["code"] == "TOKEN_INVALID"


@pytest.mark.parametrize("alg", ["HS512", "none"])
def test_wrong_algorithm(app, client, registered, alg):
    key = None if alg == "none" else app.config["JWT_SECRET_KEY"]
    token = jwt.encode(_claims(app), key, algorithm=alg)
    r = client.get("/api/v1/auth/me", headers=bearer(token))
    assert r.status_code == 401 and r.json["error"]["code"] == "TOKEN_INVALID"


def test_wrong_audience(app, client, registered):
    token = jwt.encode(_claims(app, aud="someone-else"), app.config["JWT_SECRET_KEY"], algorithm="HS256")
    r = client.get("/api/v1/auth/me", headers=bearer(token))
    assert r.status_code == 401 and "audience" in r.json["error"]["message"]


def test_refresh_token_is_not_an_access_token(client, registered):
    refresh = login(client, registered).json["refresh_token"]
    r = client.get("/api/v1/auth/me", headers=bearer(refresh))
    assert r.status_code == 401


def test_logout_revokes(client, registered):
    pair = login(client, registered).json
    assert client.post("/api/v1/auth/logout", headers=bearer(pair["access_token"])).status_code == 200
    r = client.get("/api/v1/auth/me", headers=bearer(pair["access_token"]))
    assert r.status_code == 401 and r.json["error"]["code"] == "TOKEN_REVOKED"
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 401 and r.json["error"]["code"] == "TOKEN_REVOKED"


def test_refresh_rotates_and_reuse_revokes_family(app, client, registered):
    first = login(client, registered).json
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200
    second = r.json
    assert second["refresh_token"] != first["refresh_token"]
    # The spent token comes back: the whole family dies, including the fresh refresh token.
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 401 and r.json["error"]["code"] == "TOKEN_REUSED"
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert r.status_code == 401 and r.json["error"]["code"] == "TOKEN_REVOKED"
    with app.app_context():
        from backend.extensions import db

        assert db.session.query(AuditLog).filter_by(action="auth.refresh_reuse").count() == 1


def test_inactive_user(app, client, registered):
    token = login(client, registered).json["access_token"]
    with app.app_context():
        from backend.extensions import db

        user = db.session.query(User).filter_by(email=registered).one()
        user.is_active = False
        db.session.commit()
    r = client.get("/api/v1/auth/me", headers=bearer(token))
    assert r.status_code == 401 and r.json["error"]["code"] == "USER_INACTIVE"
    r = login(client, registered)
    assert r.status_code == 401 and r.json["error"]["code"] == "USER_INACTIVE"


def test_password_change_revokes_old_tokens(client, registered):
    token = login(client, registered).json["access_token"]
    r = client.patch(
        "/api/v1/auth/me/password",
        headers=bearer(token),
        json={"current_password": PW, "new_password": "another-long-password"},
    )
    assert r.status_code == 200
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 401
    assert login(client, registered, "another-long-password").status_code == 200
    assert login(client, registered).status_code == 401


def test_password_change_wrong_current_is_422(client, registered):
    token = login(client, registered).json["access_token"]
    r = client.patch(
        "/api/v1/auth/me/password",
        headers=bearer(token),
        json={"current_password": "nope-nope-nope", "new_password": "another-long-password"},
    )
    assert r.status_code == 422 and "current_password" in r.json["error"]["details"]["fields"]


def test_malformed_authorization_header(client):
    r = client.get("/api/v1/auth/me", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401


def test_api_key_lifecycle_and_scopes(app, client, registered):
    token = login(client, registered).json["access_token"]
    r = client.post("/api/v1/auth/api-keys", headers=bearer(token), json={"name": "bot", "scopes": ["read"]})
    assert r.status_code == 201
    raw, key_id = r.json["key"], r.json["id"]
    assert raw.startswith("tp_")
    listed = client.get("/api/v1/auth/api-keys", headers=bearer(token)).json
    assert [k["id"] for k in listed] == [key_id] and "key" not in listed[0]
    with app.app_context():
        from backend.extensions import db
        from backend.models import ApiKey

        stored = db.session.get(ApiKey, key_id)
        assert raw not in (stored.key_hash, stored.prefix) and len(stored.key_hash) == 64
    assert client.get("/api/v1/auth/me", headers={"X-API-Key": raw}).status_code == 200
    assert client.delete(f"/api/v1/auth/api-keys/{key_id}", headers=bearer(token)).status_code == 204
    r = client.get("/api/v1/auth/me", headers={"X-API-Key": raw})
    assert r.status_code == 401 and r.json["error"]["code"] == "API_KEY_INVALID"
    with app.app_context():
        from backend.extensions import db

        actions = {a.action for a in db.session.query(AuditLog).all()}
    assert {"api_key.create", "api_key.revoke"} <= actions


def test_viewer_cannot_mint_trade_key(client, make_user):
    _, headers = make_user("viewer")
    r = client.post("/api/v1/auth/api-keys", headers=headers, json={"name": "bot", "scopes": ["trade"]})
    assert r.status_code == 403


def test_invalid_scope_is_422(client, trader):
    _, headers = trader
    r = client.post("/api/v1/auth/api-keys", headers=headers, json={"name": "bot", "scopes": ["root"]})
    assert r.status_code == 422 and "scopes" in r.json["error"]["details"]["fields"]
