"""Input that used to answer 500 on PostgreSQL (issue 17): deep JSON, lone surrogates, long admin emails."""

import re

import pytest


@pytest.mark.parametrize("depth", [66, 100_000])
def test_deeply_nested_json_is_400(client, trader, depth):
    _, headers = trader
    body = "[" * depth + "]" * depth
    r = client.post("/api/v1/alerts", data=body, content_type="application/json", headers=headers)
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "BAD_REQUEST"


def test_lone_surrogate_is_400_and_stores_nothing(client, trader):
    _, headers = trader
    body = '{"name": "x\\ud800y", "symbol": "SBIN", "condition": "price_above", "value": "100"}'
    r = client.post("/api/v1/alerts", data=body, content_type="application/json", headers=headers)
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "BAD_REQUEST"
    r = client.post(
        "/api/v1/auth/login",
        data='{"email": "\\udfff@x.io", "password": "p"}',
        content_type="application/json",
    )
    assert r.status_code == 400
    assert client.get("/api/v1/alerts", headers=headers).get_json()["items"] == []


def test_ordinary_unicode_still_passes(client):
    r = client.post("/api/v1/auth/login", json={"email": "née😀@example.com", "password": "x" * 12})
    assert r.status_code in (401, 422)


@pytest.mark.parametrize("email", ["a" * 300 + "@example.com", "ad\x00min@example.com"])
def test_admin_login_with_an_impossible_email_is_a_failed_login(client, email):
    html = client.get("/admin/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    r = client.post("/admin/login", data={"email": email, "password": "whatever-123", "csrf_token": token})
    assert r.status_code == 401
