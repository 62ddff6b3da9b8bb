"""The Upstox portfolio stream feed for tests: the REST authorize endpoint and a websocket server.

Documented behaviour reproduced (Upstox "Portfolio Stream Feed Authorize", "Webhook" pages):

* ``GET /v2/feed/portfolio-stream-feed/authorize?update_types=...`` with ``Authorization: Bearer``
  answers ``{"status": "success", "data": {"authorized_redirect_uri": "ws://...", ...}}``; an invalid
  token answers 401 ``UDAPI100050``. Each URI carries a one-time ``code``.
* The socket pushes JSON text frames: order updates (``"update_type": "order"`` plus order-book fields).

Test controls on ``PortfolioSocketServer``: ``push`` a message to every open socket, ``stall`` (answer
nothing, not even pings), ``drop_all`` (abrupt disconnect), ``close_all`` (clean close), ``connections``
and ``codes_used``. The server speaks RFC 6455 through ``wsproto`` on a loopback port.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import select
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, request
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from tests.stubs.upstox_stub import StubState, ok


@dataclass
class _Client:
    sock: socket.socket
    conn: WSConnection
    open: bool = False
    outbox: list[bytes] = field(default_factory=list)


class PortfolioSocketServer:
    def __init__(self) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.clients: list[_Client] = []
        self.valid_codes: set[str] = set()
        self.codes_used: list[str] = []
        self.targets: list[str] = []
        self.connections = 0
        self.stalled = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="portfolio-ws-stub")
        self._thread.start()

    # ------------------------------------------------------------------ test controls

    def issue_uri(self) -> str:
        code = secrets.token_hex(8)
        with self.lock:
            self.valid_codes.add(code)
        return f"ws://127.0.0.1:{self.port}/upstox-developer-api/order-updates/feed?requestId=r1&code={code}"

    def push(self, message: dict | str) -> int:
        """Send ``message`` to every open socket; returns how many got it."""
        text = message if isinstance(message, str) else json.dumps(message)
        sent = 0
        with self.lock:
            for c in self.clients:
                if c.open:
                    c.sock.sendall(c.conn.send(TextMessage(data=text)))
                    sent += 1
        return sent

    def open_count(self) -> int:
        with self.lock:
            return sum(1 for c in self.clients if c.open)

    def drop_all(self) -> None:
        """Abrupt disconnect (network drop): the sockets are closed without a close frame."""
        with self.lock:
            for c in self.clients:
                _shutdown(c.sock)
            self.clients.clear()

    def close_all(self) -> None:
        """Clean close (the server ends the session, as Upstox does when a token expires)."""
        with self.lock:
            for c in self.clients:
                if c.open:
                    with contextlib.suppress(OSError):
                        c.sock.sendall(c.conn.send(CloseConnection(code=1000, reason="session ended")))
                _shutdown(c.sock)
            self.clients.clear()

    def shutdown(self) -> None:
        self._stop.set()
        self.drop_all()
        self.listener.close()
        self._thread.join(timeout=5)

    # ------------------------------------------------------------------ server loop

    def _serve(self) -> None:
        while not self._stop.is_set():
            with self.lock:
                socks = [c.sock for c in self.clients]
            try:
                readable, _, _ = select.select([self.listener, *socks], [], [], 0.05)
            except (OSError, ValueError):
                continue
            for s in readable:
                if s is self.listener:
                    try:
                        sock, _ = self.listener.accept()
                    except OSError:
                        continue
                    with self.lock:
                        self.clients.append(_Client(sock, WSConnection(ConnectionType.SERVER)))
                    continue
                self._read(s)

    def _read(self, sock: socket.socket) -> None:
        with self.lock:
            client = next((c for c in self.clients if c.sock is sock), None)
        if client is None:
            return
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._forget(client)
            return
        if self.stalled and client.open:
            return  # a stalled server reads and answers nothing
        # one writer at a time: ``push`` from the test thread shares the socket and wsproto state
        with self.lock:
            drop = self._answer(client, data)
        if drop:
            self._forget(client)

    def _answer(self, client: _Client, data: bytes) -> bool:
        """Handle received bytes (lock held); True when the client is to be dropped."""
        client.conn.receive_data(data)
        out = b""
        drop = False
        for event in client.conn.events():
            if isinstance(event, Request):
                code = _query(event.target).get("code", "")
                good = code in self.valid_codes
                self.valid_codes.discard(code)  # one-time URI
                self.codes_used.append(code)
                self.targets.append(event.target)
                if not good:
                    out += client.conn.send(RejectConnection(status_code=403))
                    drop = True
                    break
                out += client.conn.send(AcceptConnection())
                client.open = True
                self.connections += 1
            elif isinstance(event, Ping):
                out += client.conn.send(event.response())
            elif isinstance(event, CloseConnection):
                with contextlib.suppress(Exception):  # already closing
                    out += client.conn.send(event.response())
                drop = True
                break
        if out:
            try:
                client.sock.sendall(out)
            except OSError:
                drop = True
        return drop

    def _forget(self, client: _Client) -> None:
        with self.lock:
            if client in self.clients:
                self.clients.remove(client)
        _shutdown(client.sock)


def _query(target: str) -> dict[str, str]:
    from urllib.parse import parse_qs, urlparse

    return {k: v[0] for k, v in parse_qs(urlparse(target).query).items()}


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def portfolio_blueprint(state: StubState, server: PortfolioSocketServer) -> Blueprint:
    bp = Blueprint("upstox_portfolio_feed", __name__)

    @bp.get("/v2/feed/portfolio-stream-feed/authorize")
    def authorize() -> Any:
        if (err := state.check_auth()) is not None:
            return err
        uri = server.issue_uri()
        with state.lock:
            state.portfolio_update_types = request.args.get("update_types", "")  # type: ignore[attr-defined]
        return ok({"authorized_redirect_uri": uri, "authorizedRedirectUri": uri})

    return bp


def order_update(row: dict, **changes: Any) -> dict:
    """An order update as the feed sends it: an order-book row plus ``update_type`` (Webhook page)."""
    msg = {k: v for k, v in row.items() if k not in ("market_protection",)}
    msg.update(changes)
    msg["update_type"] = "order"
    msg["instrument_key"] = msg.get("instrument_token")
    msg["user_id"] = "******"
    msg["pending_quantity"] = int(msg.get("quantity") or 0) - int(msg.get("filled_quantity") or 0)
    return msg
