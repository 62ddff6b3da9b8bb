"""Health checks, readiness per component, Prometheus metrics."""

from backend.ops import READINESS_CHECKS, register_readiness_check


def test_live(client):
    assert client.get("/health/live").json == {"status": "ok"}


def test_ready_reports_components(client):
    body = client.get("/health/ready").json
    assert body["status"] == "ok"
    assert body["components"]["database"]["status"] == "ok"
    assert "redis" in body["components"]


def test_ready_503_when_a_component_is_down(client):
    def broken():
        raise ConnectionError("down")

    register_readiness_check("test-broken", broken)
    try:
        resp = client.get("/health/ready")
        assert resp.status_code == 503
        assert resp.json["components"]["test-broken"]["status"] == "down"
        assert resp.json["components"]["database"]["status"] == "ok"
    finally:
        READINESS_CHECKS.pop("test-broken")


def test_metrics_exposition(client):
    client.get("/health/live")
    client.get("/api/v1/auth/me")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'http_requests_total{endpoint="/health/live",method="GET",status="200"}' in text
    assert "http_request_duration_seconds_bucket" in text
    assert 'auth_failures_total{reason="UNAUTHORIZED"}' in text


def test_metrics_token(app, client):
    app.config["METRICS_TOKEN"] = "metrics-secret-token"
    try:
        assert client.get("/metrics").status_code == 401
        ok = client.get("/metrics", headers={"Authorization": "Bearer metrics-secret-token"})
        assert ok.status_code == 200
    finally:
        app.config["METRICS_TOKEN"] = None
