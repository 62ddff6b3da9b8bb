"""Credentials die when revoked (issue 17): token families, durable denylist, keys on password change."""

import jwt

from backend.extensions import redis_store

PW = "correct-horse-battery"


def _login(client, email):
    return client.post("/api/v1/auth/login", json={"email": email, "password": PW}).get_json()


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_refresh_reuse_kills_the_familys_access_tokens_at_once(client, make_user):
    make_user("trader", email="fam@example.com")
    first = _login(client, "fam@example.com")
    second = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).get_json()
    # the thief's copy (the rotated refresh token) comes back
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "TOKEN_REUSED"
    for access in (first["access_token"], second["access_token"]):
        r = client.get("/api/v1/auth/me", headers=_bearer(access))
        assert r.status_code == 401 and r.get_json()["error"]["code"] == "TOKEN_REVOKED"


def test_logout_survives_redis_losing_its_copy(client, make_user):
    _, headers = make_user("trader")
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 200
    if redis_store.client is not None:
        redis_store.client.flushdb()  # Redis restarted empty
    r = client.get("/api/v1/auth/me", headers=headers)
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "TOKEN_REVOKED"
    if redis_store.client is not None:  # and the cache was refilled from the database
        assert any(k.startswith(b"jwt:revoked:fam:") for k in redis_store.client.keys("jwt:revoked:*"))


def test_other_logins_stay_valid_after_a_logout(client, make_user):
    _, headers = make_user("trader", email="two@example.com")
    other = _login(client, "two@example.com")
    client.post("/api/v1/auth/logout", headers=headers)
    assert client.get("/api/v1/auth/me", headers=_bearer(other["access_token"])).status_code == 200


def test_password_change_revokes_api_keys(client, trader):
    _, headers = trader
    key = client.post("/api/v1/auth/api-keys", json={"name": "bot", "scopes": ["read"]}, headers=headers)
    raw = key.get_json()["key"]
    assert client.get("/api/v1/auth/me", headers={"X-API-Key": raw}).status_code == 200
    body = {"current_password": PW, "new_password": "another-long-password"}
    assert client.patch("/api/v1/auth/me/password", json=body, headers=headers).status_code == 200
    r = client.get("/api/v1/auth/me", headers={"X-API-Key": raw})
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "API_KEY_INVALID"


def test_validly_signed_token_with_a_non_numeric_subject_is_401(app, client, trader):
    _, headers = trader
    claims = jwt.decode(headers["Authorization"][7:], options={"verify_signature": False})
    for sub in ("admin", "1e3", "٣", "99999999999999999999999"):
        forged = jwt.encode({**claims, "sub": sub}, app.config["JWT_SECRET_KEY"], algorithm="HS256")
        r = client.get("/api/v1/auth/me", headers=_bearer(forged))
        assert r.status_code == 401 and r.get_json()["error"]["code"] == "TOKEN_INVALID", sub
