"""gunicorn worker that answers gunicorn's own errors in the API's error envelope.

gunicorn rejects some requests before the app sees them -- a request line longer than
``limit_request_line`` (at most 8,190 bytes), too many or too large headers, a malformed request
line -- and writes an HTML page. Clients of a JSON API should get the one envelope
(docs/errors.md) there too (issue 17: ``GET /quotes`` with a long symbol list answered an HTML 414).
The worker lets gunicorn decide the status and log the error as usual, then sends the envelope
with that status in place of the HTML.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from gunicorn import util
from gunicorn.http.errors import LimitRequestHeaders, LimitRequestLine
from gunicorn.workers.gthread import ThreadWorker

from backend.errors import HTTP_CODES


class _Capture:
    """Stands in for the client socket while gunicorn writes its HTML error page."""

    def __init__(self) -> None:
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0  # "non-blocking already": gunicorn then just calls sendall

    def setblocking(self, _flag: bool) -> None:
        return None

    def sendall(self, data: bytes) -> None:
        self.data += data

    def send(self, data: bytes) -> int:
        self.data += data
        return len(data)


def error_body(status: int, exc: BaseException, limits: dict[str, int]) -> dict[str, Any]:
    """The envelope for a request gunicorn refused (no request id was ever assigned: make one)."""
    code = HTTP_CODES.get(status) or ("BAD_REQUEST" if status < 500 else "INTERNAL_ERROR")
    details: dict[str, Any] = {}
    if isinstance(exc, LimitRequestLine):
        message = (
            f"The request line is longer than {limits['request_line']} bytes. "
            "Send long symbol lists to POST /api/v1/market-data/quotes (up to 500 symbols)."
        )
        details["limit_bytes"] = limits["request_line"]
    elif isinstance(exc, LimitRequestHeaders):
        message = f"The request headers are too large or too many: {exc}."
        details["limit_fields"] = limits["fields"]
        details["limit_field_bytes"] = limits["field_size"]
    elif status >= 500:
        message = "An internal error occurred. Quote the request_id when reporting it."
    else:
        message = f"The server could not read the request: {exc}."
    return {"error": {"code": code, "message": message, "details": details, "request_id": uuid.uuid4().hex}}


class EnvelopeThreadWorker(ThreadWorker):
    """gunicorn's gthread worker, with its front-door errors in the JSON envelope."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        capture = _Capture()
        # gunicorn writes its page to the socket it is given: give it the capture, keep its status.
        super().handle_error(req, capture, addr, exc)
        status_line = capture.data.split(b"\r\n", 1)[0].decode("latin1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            return  # gunicorn wrote nothing (it could not): nor do we
        status, reason = int(parts[1]), (parts[2] if len(parts) > 2 else "")
        limits = {
            "request_line": int(self.cfg.limit_request_line),
            "fields": int(self.cfg.limit_request_fields),
            "field_size": int(self.cfg.limit_request_field_size),
        }
        body = json.dumps(error_body(status, exc, limits)).encode()
        request_id = json.loads(body)["error"]["request_id"]
        head = (
            f"HTTP/1.1 {status} {reason}\r\n"
            "Connection: close\r\n"
            "Content-Type: application/json\r\n"
            f"X-Request-ID: {request_id}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode("latin1")
        try:
            util.write_nonblock(client, head + body)
        except Exception:  # noqa: BLE001 - the client may be gone, as gunicorn itself tolerates
            self.log.debug("Failed to send error message.")
