"""Webhook signing/verification, SSRF policy and delivery with retries."""

import hashlib
import hmac
import socket

import pytest
import requests
from werkzeug import Response

from backend.domain.alerts.webhooks import (
    SIGNATURE_HEADER,
    backoff_delays,
    deliver,
    encode_body,
    sign,
    validate_url,
    verify,
)
from backend.domain.errors import ValidationFailed

SECRET = "whsec_test"
BODY = b'{"a":1}'
TS = 1_700_000_000


def test_sign_matches_reference_vector():
    # hex(HMAC-SHA256(b"whsec_test", b'1700000000.{"a":1}')), computed independently.
    expected = "38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
    assert sign(SECRET, BODY, TS) == f"t={TS},v1={expected}"
    assert sign(SECRET.encode(), BODY, TS + 0.9) == f"t={TS},v1={expected}"  # bytes secret, int seconds


def test_verify_good_signature():
    header = sign(SECRET, BODY, TS)
    assert verify(SECRET, BODY, header, now=TS) is True
    assert verify(SECRET, BODY, header, now=TS + 299) is True


def test_verify_rejects_tampered_body_and_wrong_secret():
    header = sign(SECRET, BODY, TS)
    assert verify(SECRET, b'{"a":2}', header, now=TS) is False
    assert verify("other-secret", BODY, header, now=TS) is False


def test_verify_rejects_replay_outside_tolerance():
    header = sign(SECRET, BODY, TS)
    assert verify(SECRET, BODY, header, now=TS + 301) is False
    assert verify(SECRET, BODY, header, now=TS - 301) is False  # far-future timestamp
    assert verify(SECRET, BODY, header, tolerance_s=600, now=TS + 400) is True


def test_verify_rejects_forged_timestamp():
    # Reusing a valid v1 with a fresh t must fail: the timestamp is part of the signed message.
    v1 = sign(SECRET, BODY, TS).split("v1=")[1]
    assert verify(SECRET, BODY, f"t={TS + 100},v1={v1}", now=TS + 100) is False


@pytest.mark.parametrize("header", [None, "", "garbage", f"t={TS}", "v1=abc", "t=x,v1=abc", f"t={TS},v1="])
def test_verify_rejects_malformed_headers(header):
    assert verify(SECRET, BODY, header, now=TS) is False


def test_verify_accepts_any_of_several_signatures():
    good = sign(SECRET, BODY, TS).split("v1=")[1]
    assert verify(SECRET, BODY, f"t={TS},v1={'0' * 64},v1={good}", now=TS) is True


# ---------------------------------------------------------------- SSRF


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://10.0.0.1/hook",
        "http://192.168.1.5/hook",
        "http://172.16.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://100.64.0.1/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fe80::1]/hook",
        "http://localhost:8080/hook",
    ],
)
def test_private_and_special_addresses_refused(url):
    with pytest.raises(ValidationFailed) as exc:
        validate_url(url)
    assert exc.value.details["field"] == "url"


@pytest.mark.parametrize(
    "url",
    ["ftp://x/hook", "file:///etc/passwd", "gopher://example.com/", "http://", "http://user:pw@example.com/"],
)
def test_bad_scheme_or_shape_refused(url):
    with pytest.raises(ValidationFailed):
        validate_url(url, resolver=lambda *a, **k: [(2, 1, 6, "", ("93.184.216.34", 80))])


def fake_resolver(mapping):
    def resolve(host, port, **kwargs):
        if host not in mapping:
            raise socket.gaierror("no such host")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (addr, port)) for addr in mapping[host]]

    return resolve


def test_public_host_accepted_and_mixed_answers_refused():
    resolver = fake_resolver(
        {"hooks.example.com": ["93.184.216.34"], "rebind.example.com": ["93.184.216.34", "10.1.2.3"]}
    )
    assert validate_url("https://hooks.example.com/x", resolver=resolver) == ["93.184.216.34"]
    with pytest.raises(ValidationFailed) as exc:
        validate_url("https://rebind.example.com/x", resolver=resolver)
    assert exc.value.details["address"] == "10.1.2.3"
    with pytest.raises(ValidationFailed):
        validate_url("https://nowhere.example.com/x", resolver=resolver)


def test_allow_private_lets_loopback_through():
    assert validate_url("http://127.0.0.1:9/x", allow_private=True) == ["127.0.0.1"]


# ---------------------------------------------------------------- delivery


def test_deliver_retries_until_success(httpserver):
    received = []

    def handler(request):
        received.append((request.data, request.headers[SIGNATURE_HEADER]))
        return Response("ok" if len(received) == 3 else "boom", status=200 if len(received) == 3 else 503)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(handler)
    sleeps = []
    payload = {"event": "alert.fired", "data": {"rule_id": 7, "price": "101.5"}}
    with requests.Session() as session:
        attempts = deliver(
            httpserver.url_for("/hook"),
            payload,
            SECRET,
            session,
            max_attempts=5,
            backoff_base=0.5,
            allow_private=True,
            sleep=sleeps.append,
            rng=lambda: 0.5,
        )
    assert [(a.attempt, a.status_code, a.ok) for a in attempts] == [
        (1, 503, False),
        (2, 503, False),
        (3, 200, True),
    ]
    assert attempts[0].error == "HTTP 503" and attempts[2].error is None
    assert all(a.duration_ms >= 0 for a in attempts)
    assert sleeps == [0.75, 1.5]  # 0.5 * 2**n * (1 + jitter 0.5)
    assert len(received) == 3
    for body, header in received:
        assert body == encode_body(payload) == b'{"data":{"price":"101.5","rule_id":7},"event":"alert.fired"}'
        assert verify(SECRET, body, header)


def test_deliver_gives_up_on_permanent_error(httpserver):
    httpserver.expect_request("/hook").respond_with_data("nope", status=400)
    sleeps = []
    with requests.Session() as session:
        attempts = deliver(
            httpserver.url_for("/hook"),
            {"x": 1},
            SECRET,
            session,
            max_attempts=4,
            allow_private=True,
            sleep=sleeps.append,
        )
    assert [(a.status_code, a.retryable) for a in attempts] == [(400, False)]
    assert sleeps == []


class FailingSession:
    def __init__(self):
        self.calls = 0

    def post(self, url, **kwargs):
        self.calls += 1
        assert kwargs["allow_redirects"] is False
        raise requests.ConnectionError("connection refused")


def test_deliver_records_transport_errors_and_backs_off_exponentially():
    session, sleeps = FailingSession(), []
    attempts = deliver(
        "http://127.0.0.1:1/hook",
        {"x": 1},
        SECRET,
        session,
        max_attempts=4,
        backoff_base=1.0,
        allow_private=True,
        sleep=sleeps.append,
        rng=lambda: 0.0,
    )
    assert session.calls == 4
    assert [a.attempt for a in attempts] == [1, 2, 3, 4]
    assert all(a.status_code is None and "ConnectionError" in a.error for a in attempts)
    assert sleeps == [1.0, 2.0, 4.0]


def test_deliver_refuses_private_url_without_sending():
    session = FailingSession()
    with pytest.raises(ValidationFailed):
        deliver("http://169.254.169.254/latest", {"x": 1}, SECRET, session, sleep=lambda s: None)
    assert session.calls == 0


def test_backoff_jitter_bounds():
    assert backoff_delays(4, 2.0, lambda: 0.0) == [2.0, 4.0, 8.0]
    assert backoff_delays(4, 2.0, lambda: 0.999) == pytest.approx([3.998, 7.996, 15.992])


def test_reference_hmac_helper_agrees():
    # The documented receiver recipe: HMAC over f"{t}.{body}".
    header = sign(SECRET, BODY, TS)
    t, v1 = (part.split("=", 1)[1] for part in header.split(","))
    assert hmac.new(SECRET.encode(), f"{t}.".encode() + BODY, hashlib.sha256).hexdigest() == v1
