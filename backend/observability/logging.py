"""JSON logs with request ids and a redaction filter for credentials."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from flask import g, has_request_context

SENSITIVE_KEYS = re.compile(
    r"(authorization|password|passwd|secret|token|api[_-]?key|access_token|refresh_token|cookie|code_verifier)",
    re.IGNORECASE,
)
REDACTED = "[REDACTED]"

# Free-text patterns: bearer tokens, JWTs, key=value credentials, our API keys.
_TEXT_PATTERNS = [
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/]+=*"), r"\1" + REDACTED),
    (re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"tp_[A-Za-z0-9_-]{16,}"), REDACTED),
    # Credentials in query strings (OAuth callback ``code``/``state``, tokens, keys) in any URL.
    (
        re.compile(
            r"(?i)([?&](?:code|state|token|access_token|refresh_token|id_token|api[_-]?key|key|password|"
            r"secret|client_secret|code_verifier|signature)=)[^&#\s\"']+"
        ),
        r"\1" + REDACTED,
    ),
    (
        re.compile(
            r"(?i)((?:password|passwd|secret|token|api[_-]?key|authorization)[\"']?\s*[:=]\s*[\"']?)([^\s\"',}]+)"
        ),
        r"\1" + REDACTED,
    ),
]

_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def redact(value: Any) -> Any:
    """Return ``value`` with credentials removed, recursing into dicts and lists."""
    if isinstance(value, dict):
        return {k: (REDACTED if SENSITIVE_KEYS.search(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        for pattern, repl in _TEXT_PATTERNS:
            value = pattern.sub(repl, value)
        return value
    return value


class RedactionFilter(logging.Filter):
    """Scrubs the message, its args and every extra field before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        record.msg = redact(str(record.msg))
        for key in list(record.__dict__):
            if key in _STANDARD_ATTRS:
                continue
            if SENSITIVE_KEYS.search(key):
                setattr(record, key, REDACTED)
            else:
                setattr(record, key, redact(record.__dict__[key]))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context() and "request_id" not in record.__dict__:
            payload["request_id"] = getattr(g, "request_id", None)
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc_info"] = redact(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)


class ConsoleFormatter(logging.Formatter):
    """One readable line per event for a person at a terminal: time, level, logger, message, extras."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        extras = " ".join(
            f"{k}={v}"
            for k, v in record.__dict__.items()
            if k not in _STANDARD_ATTRS and not k.startswith("_") and v is not None
        )
        line = f"{ts} {record.levelname:<7} {record.name}: {record.getMessage()}" + (
            f"  {extras}" if extras else ""
        )
        if record.exc_info:
            line += "\n" + redact(self.formatException(record.exc_info))
        return line


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (test runners swap it), never a stale stream."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging(level: str = "INFO", json_logs: bool = True) -> None:
    """Install one stderr handler with redaction on the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_platform", False):
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler._platform = True  # type: ignore[attr-defined]
    handler.addFilter(RedactionFilter())
    handler.setFormatter(JsonFormatter() if json_logs else ConsoleFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("werkzeug").setLevel("WARNING")
