"""Revoking a credential ends its live Socket.IO connections (issue 17: they kept receiving events)."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.conftest import USING_REDIS
from tests.live.test_socketio_live import WAIT, _token, live  # noqa: F401  (the fixture)

PW = "correct-horse-battery"


def _wait_disconnected(sio) -> bool:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if not sio.connected or "/live" not in sio.namespaces:
            return True
        time.sleep(0.05)
    return False


def test_logout_disconnects_the_sockets_of_that_login_only(live, client, make_user):  # noqa: F811
    _feed, connect = live
    _, headers = make_user("trader", email="sock@example.com")
    other = client.post("/api/v1/auth/login", json={"email": "sock@example.com", "password": PW}).get_json()
    mine, ev = connect({"token": _token(headers)})
    theirs, ev2 = connect({"token": other["access_token"]})
    ev["ready"].get(timeout=WAIT)
    ev2["ready"].get(timeout=WAIT)
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 200
    assert _wait_disconnected(mine)
    assert theirs.connected and "/live" in theirs.namespaces  # the other login is untouched
    # and the logged-out token cannot reconnect
    with pytest.raises(Exception):
        connect({"token": _token(headers)})


def test_password_change_disconnects_every_socket_of_the_user(live, client, make_user):  # noqa: F811
    _feed, connect = live
    _, headers = make_user("trader", email="pw@example.com")
    key = client.post("/api/v1/auth/api-keys", json={"name": "ws", "scopes": ["read"]}, headers=headers)
    by_token, ev = connect({"token": _token(headers)})
    by_key, ev2 = connect({"api_key": key.get_json()["key"]})
    ev["ready"].get(timeout=WAIT)
    ev2["ready"].get(timeout=WAIT)
    r = client.patch(
        "/api/v1/auth/me/password",
        json={"current_password": PW, "new_password": "another-long-password"},
        headers=headers,
    )
    assert r.status_code == 200
    assert _wait_disconnected(by_token) and _wait_disconnected(by_key)


def test_revoking_an_api_key_disconnects_its_sockets(live, client, trader):  # noqa: F811
    _feed, connect = live
    _, headers = trader
    key = client.post("/api/v1/auth/api-keys", json={"name": "ws", "scopes": ["read"]}, headers=headers)
    sio, ev = connect({"api_key": key.get_json()["key"]})
    ev["ready"].get(timeout=WAIT)
    assert client.delete(f"/api/v1/auth/api-keys/{key.get_json()['id']}", headers=headers).status_code == 204
    assert _wait_disconnected(sio)


@pytest.mark.skipif(not USING_REDIS, reason="other workers are reached through the Redis message queue")
def test_a_revocation_published_by_another_worker_disconnects_here(app, live, trader):  # noqa: F811
    import redis

    from backend.realtime.live import user_room

    _feed, connect = live
    user_id, headers = trader
    sio, ev = connect({"token": _token(headers)})
    ev["ready"].get(timeout=WAIT)
    # what another worker's BatchingRedisManager.disconnect_room publishes
    message = {
        "method": "disconnect_room",
        "host_id": "other-worker",
        "room": user_room(user_id),
        "namespace": "/live",
    }
    redis.Redis.from_url(app.config["REDIS_URL"]).publish("flask-socketio", json.dumps(message))
    assert _wait_disconnected(sio)


@pytest.mark.parametrize(
    ("auth", "code"),
    [({"token": "not-a-jwt"}, "TOKEN_INVALID"), ({"api_key": "tp_wrong"}, "API_KEY_INVALID")],
)
def test_a_refused_connection_carries_its_error_code_as_data(app, auth, code):
    from socketio.exceptions import ConnectionRefusedError

    from backend.realtime.live import LiveNamespace

    with app.test_request_context(), pytest.raises(ConnectionRefusedError) as refused:
        LiveNamespace().on_connect(auth)
    # what the client's connect_error receives: {"message": reason, "data": {"code", "message"}}
    assert refused.value.error_args["data"]["code"] == code
    assert refused.value.error_args["message"] == refused.value.error_args["data"]["message"]


def _metric(client, name):
    text = client.get("/metrics").get_data(as_text=True)
    return float(re.search(rf"^{name} (\S+)$", text, re.M).group(1))


def test_metrics_count_open_connections_and_the_pool(live, client, trader):  # noqa: F811
    _feed, connect = live
    before = _metric(client, "socketio_connections")
    sio, ev = connect({"token": _token(trader[1])})
    ev["ready"].get(timeout=WAIT)
    assert _metric(client, "socketio_connections") == before + 1
    sio.disconnect()
    deadline = time.monotonic() + WAIT
    while _metric(client, "socketio_connections") != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _metric(client, "socketio_connections") == before
    assert _metric(client, "db_pool_size") >= 1 and _metric(client, "db_pool_checked_out") >= 0
