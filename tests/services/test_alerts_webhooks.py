"""Webhook delivery from the evaluator: signature verifies, retries are logged, SSRF is refused."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from werkzeug import Response

from backend.domain.alerts import webhooks as wh
from backend.domain.errors import ValidationFailed
from backend.domain.market.types import Tick
from backend.extensions import db
from backend.models import User
from backend.models.alerts import AlertHistory, AlertWebhookAttempt, AlertWebhookSecret
from backend.services import alerts

T0 = datetime.now(UTC) + timedelta(days=1)


def tick(price, seconds=0):
    p = Decimal(str(price))
    return Tick("SBIN", p, p, p, 100, T0 + timedelta(seconds=seconds))


@pytest.fixture
def ctx(app, trader, monkeypatch):
    with app.app_context():
        ev = alerts.AlertEvaluator(app)
        ev.sleep = lambda s: None  # backoff is asserted on the schedule, not waited for
        monkeypatch.setitem(app.extensions, "alerts", ev)
        monkeypatch.setattr(alerts, "emit_alert", lambda uid, payload: None)
        user = db.session.get(User, trader[0])
        yield user, ev


def test_secret_is_encrypted_at_rest_and_shown_once(ctx):
    user, _ = ctx
    info = alerts.rotate_webhook_secret(user)
    assert info["secret"].startswith("whsec_") and info["configured"]
    stored = db.session.get(AlertWebhookSecret, user.id).secret_encrypted
    assert info["secret"] not in stored
    assert alerts._secret_for(user.id) == info["secret"]
    assert alerts.webhook_secret_info(user.id)["secret"] is None
    second = alerts.rotate_webhook_secret(user)["secret"]
    assert second != info["secret"] and alerts._secret_for(user.id) == second


def test_private_webhook_url_refused_by_default(ctx):
    user, _ = ctx
    alerts.rotate_webhook_secret(user)
    for url in (
        "http://127.0.0.1:9/hook",
        "http://10.0.0.5/x",
        "http://169.254.169.254/latest",
        "ftp://example.com/",
    ):
        with pytest.raises(ValidationFailed) as exc:
            alerts.create_rule(
                user, {"symbol": "SBIN", "kind": "price_above", "params": {"level": 1}, "webhook_url": url}
            )
        assert "webhook_url" in exc.value.details["fields"]


def test_webhook_needs_a_secret_first(ctx, app, monkeypatch):
    user, _ = ctx
    monkeypatch.setitem(app.config, "ALERTS_ALLOW_PRIVATE_WEBHOOKS", True)
    with pytest.raises(ValidationFailed):
        alerts.create_rule(
            user,
            {
                "symbol": "SBIN",
                "kind": "price_above",
                "params": {"level": 1},
                "webhook_url": "http://127.0.0.1:1/",
            },
        )


def test_signed_delivery_retries_then_succeeds_and_logs_every_attempt(ctx, app, monkeypatch, httpserver):
    user, ev = ctx
    monkeypatch.setitem(app.config, "ALERTS_ALLOW_PRIVATE_WEBHOOKS", True)
    secret = alerts.rotate_webhook_secret(user)["secret"]
    received = []
    answers = iter([503, 500, 200])

    def handler(request):
        received.append((request.get_data(), request.headers.get("X-Signature")))
        return Response("ok", status=next(answers))

    httpserver.expect_request("/hook", method="POST").respond_with_handler(handler)
    rule = alerts.create_rule(
        user,
        {
            "symbol": "SBIN",
            "kind": "price_above",
            "params": {"level": 100},
            "webhook_url": httpserver.url_for("/hook"),
        },
    )
    hist = ev.on_tick(tick(101))
    ev.drain()
    assert len(received) == 3
    body, sig = received[-1]
    assert wh.verify(secret, body, sig)
    assert not wh.verify("wrong-secret", body, sig)
    doc = json.loads(body)
    assert (
        doc["event"] == "alert.fired"
        and doc["data"]["rule_id"] == rule.id
        and doc["data"]["price"] == "101.0000"
    )
    db.session.expire_all()
    attempts = db.session.scalars(db.select(AlertWebhookAttempt).order_by(AlertWebhookAttempt.attempt)).all()
    assert [(a.attempt, a.status_code, a.ok) for a in attempts] == [
        (1, 503, False),
        (2, 500, False),
        (3, 200, True),
    ]
    assert db.session.get(AlertHistory, hist[0].id).webhook_status == "delivered"


def test_permanent_failure_is_not_retried(ctx, app, monkeypatch, httpserver):
    user, ev = ctx
    monkeypatch.setitem(app.config, "ALERTS_ALLOW_PRIVATE_WEBHOOKS", True)
    alerts.rotate_webhook_secret(user)
    httpserver.expect_request("/hook").respond_with_data("no", status=404)
    alerts.create_rule(
        user,
        {
            "symbol": "SBIN",
            "kind": "price_above",
            "params": {"level": 100},
            "webhook_url": httpserver.url_for("/hook"),
        },
    )
    hist = ev.on_tick(tick(101))
    ev.drain()
    db.session.expire_all()
    assert db.session.get(AlertHistory, hist[0].id).webhook_status == "failed"
    assert db.session.scalar(db.select(db.func.count(AlertWebhookAttempt.id))) == 1


def test_delivery_refused_when_policy_tightened_after_creation(ctx, app, monkeypatch):
    user, ev = ctx
    monkeypatch.setitem(app.config, "ALERTS_ALLOW_PRIVATE_WEBHOOKS", True)
    alerts.rotate_webhook_secret(user)
    alerts.create_rule(
        user,
        {
            "symbol": "SBIN",
            "kind": "price_above",
            "params": {"level": 100},
            "webhook_url": "http://127.0.0.1:9/x",
        },
    )
    monkeypatch.setitem(app.config, "ALERTS_ALLOW_PRIVATE_WEBHOOKS", False)
    sent = []
    ev.session_factory = lambda: type("S", (), {"post": lambda *a, **k: sent.append(a)})()
    hist = ev.on_tick(tick(101))
    ev.drain()
    db.session.expire_all()
    assert sent == []
    assert db.session.get(AlertHistory, hist[0].id).webhook_status == "refused"
    attempt = db.session.scalars(db.select(AlertWebhookAttempt)).one()
    assert attempt.error.startswith("refused") and not attempt.ok


def test_slow_receiver_does_not_block_tick_processing(ctx, app, monkeypatch):
    import threading

    user, ev = ctx
    monkeypatch.setitem(app.config, "ALERTS_ALLOW_PRIVATE_WEBHOOKS", True)
    alerts.rotate_webhook_secret(user)
    alerts.create_rule(
        user,
        {
            "symbol": "SBIN",
            "kind": "price_above",
            "params": {"level": 100},
            "webhook_url": "http://127.0.0.1:9/x",
            "recurring": True,
        },
    )
    gate = threading.Event()

    class Blocking:
        def post(self, *a, **k):
            gate.wait(10)
            return type("R", (), {"status_code": 200})()

    ev.session_factory = Blocking
    assert len(ev.on_tick(tick(101, 0))) == 1  # returns while the delivery is still blocked
    assert ev.on_tick(tick(99, 1)) == []
    assert len(ev.on_tick(tick(101, 2))) == 1
    assert ev.status()["pending_webhooks"] >= 1
    gate.set()
    ev.drain()
    assert ev.status()["pending_webhooks"] == 0
