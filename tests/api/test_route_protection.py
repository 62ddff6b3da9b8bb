"""Walk app.url_map: everything but health, docs, login/register/refresh demands credentials."""

import re

PUBLIC = {
    "/",  # redirects to /api/docs
    "/health/live",
    "/health/ready",
    "/metrics",
    "/api/docs",
    "/api/swagger.json",
    "/api/",
    "/api/v1/auth/login",
    "/api/v1/auth/register",
    "/api/v1/auth/refresh",
    # the dashboard's cookie session: login, and a refresh that needs the cookie + its CSRF header
    "/api/v1/auth/browser/login",
    "/api/v1/auth/browser/refresh",
    # the dashboard's shell page: it holds no data; every call it makes needs a token
    "/",
    # Upstox redirects the browser here (no Bearer header); the single-use state is the credential
    "/api/v1/broker/upstox/callback",
    # TradingView / Chartink send no headers of ours: the unguessable token in the URL is the credential
    "/api/v1/signals/webhook/<string:token>",
}
PUBLIC_PREFIXES = ("/static/", "/swaggerui/", "/admin/login", "/admin/static/", "/app/static/")


def _concrete(rule: str) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: "1", rule)


def test_every_route_is_protected(app, client):
    unprotected = []
    checked = 0
    for rule in app.url_map.iter_rules():
        path = rule.rule
        if path in PUBLIC or path.startswith(PUBLIC_PREFIXES):
            continue
        url = _concrete(path)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            resp = client.open(url, method=method, json={})
            checked += 1
            # Admin HTML pages (cookie session) send anonymous visitors to their login form.
            to_login = resp.status_code == 302 and resp.headers["Location"].startswith("/admin/login")
            if resp.status_code != 401 and not (path.startswith("/admin/") and to_login):
                unprotected.append(f"{method} {path} -> {resp.status_code}")
    assert checked > 5
    assert not unprotected, "\n".join(unprotected)


def test_public_routes_answer_without_credentials(client):
    assert client.get("/health/live").status_code == 200
    assert client.get("/api/swagger.json").status_code == 200
    assert client.get("/api/docs").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_bad_token_on_public_route_is_still_refused(client):
    resp = client.get("/health/live", headers={"Authorization": "Bearer garbage"})
    assert resp.status_code == 401
