"""Credentials never reach the logs; each request writes one JSON access line."""

import io
import json
import logging

from backend.observability.logging import JsonFormatter, RedactionFilter, redact

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"


def _capture():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactionFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, stream, handler


def test_redaction_filter_scrubs_message_args_and_extras():
    logger, stream, handler = _capture()
    try:
        logger.info("calling with Authorization: Bearer %s", JWT)
        logger.info(
            "login", extra={"password": "hunter2-hunter2", "headers": {"Authorization": f"Bearer {JWT}"}}
        )
        logger.info("bot used key tp_abcd1234_" + "z" * 40)
        logger.info('payload {"refresh_token": "abc.def.ghi", "api_key": "k-123456"}')
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    for secret in (JWT, "hunter2-hunter2", "z" * 40, "abc.def.ghi", "k-123456"):
        assert secret not in out
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert lines[1]["password"] == "[REDACTED]"
    assert lines[1]["headers"]["Authorization"] == "[REDACTED]"
    assert "[REDACTED]" in lines[0]["message"]


def test_redact_leaves_ordinary_data():
    assert redact({"symbol": "RELIANCE", "qty": 5}) == {"symbol": "RELIANCE", "qty": 5}


def test_access_log_line_and_no_token_in_logs(app, client, trader, capsys):
    from backend.observability.logging import configure_logging

    configure_logging("INFO", True)
    _, headers = trader
    try:
        client.get("/api/v1/auth/me", headers={**headers, "X-Request-ID": "req-42"})
    finally:
        configure_logging("WARNING", True)
    err = capsys.readouterr().err
    token = headers["Authorization"].split()[1]
    assert token not in err
    access = [json.loads(line) for line in err.splitlines() if '"request"' in line and "req-42" in line]
    assert access, err
    line = access[0]
    assert {"method", "path", "status", "duration_ms", "user_id", "request_id"} <= set(line)
    assert line["status"] == 200 and line["path"] == "/api/v1/auth/me" and line["user_id"] is not None


def test_oauth_code_and_state_never_reach_any_log(app, client, trader, capsys):
    from backend.observability.logging import configure_logging

    code, state = "AUTHCODE-7f3a9c2e1b", "STATE-d41d8cd98f00b204"
    configure_logging("DEBUG", True)
    try:
        client.get(f"/api/v1/broker/upstox/callback?code={code}&state={state}")
        line = f'"POST /v2/login/authorization/token?code={code}&state={state} HTTP/1.1" 200'
        logging.getLogger("urllib3.connectionpool").debug("https://api.upstox.com:443 " + line)
    finally:
        configure_logging("WARNING", True)
    err = capsys.readouterr().err
    assert code not in err and state not in err
    assert "code=[REDACTED]" in err
