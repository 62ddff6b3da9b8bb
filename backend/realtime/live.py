"""Socket.IO namespace ``/live``: authenticated quote subscriptions and private user rooms.

Connect with ``auth={"token": "<access JWT>"}`` or ``auth={"api_key": "<key>"}``; anything else,
or an expired/revoked credential, is refused (the client gets ``connect_error``). Events are
documented in docs/realtime.md.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import current_app, request
from flask_socketio import Namespace, emit, join_room, leave_room
from socketio.exceptions import ConnectionRefusedError  # noqa: A004 - the builtin never reaches the client

from backend.domain.errors import AuthenticationFailed
from backend.extensions import db

log = logging.getLogger(__name__)

NAMESPACE = "/live"


def user_room(user_id: int) -> str:
    return f"user:{user_id}"


def quote_room(symbol: str) -> str:
    return f"quotes:{symbol}"


def family_room(family_id: str) -> str:
    """Every connection opened with an access token of this login (refresh-token family)."""
    return f"family:{family_id}"


def api_key_room(key_id: int) -> str:
    return f"api-key:{key_id}"


def disconnect_local(server: Any, room: str, namespace: str = NAMESPACE) -> int:
    """Disconnect this process's connections in ``room``; return how many."""
    sids = [sid for sid, _eio in list(server.manager.get_participants(namespace, room))]
    for sid in sids:
        server.disconnect(sid, namespace=namespace, ignore_queue=True)
    return len(sids)


def _authenticate(auth: Any) -> tuple[int, set[str], list[str]]:
    from backend.services import auth as auth_service

    if not isinstance(auth, dict):
        raise AuthenticationFailed("Send {token} or {api_key} in the Socket.IO auth payload.")
    token = auth.get("token") or ""
    api_key = auth.get("api_key") or ""
    if isinstance(token, str) and token.lower().startswith("bearer "):
        token = token[7:]
    rooms = []
    if token:
        user, claims = auth_service.authenticate_access(str(token).strip())
        scopes = auth_service.scopes_for(user, None)
        if claims.get("fam"):
            rooms.append(family_room(claims["fam"]))
    elif api_key:
        user, key = auth_service.authenticate_api_key(str(api_key).strip())
        scopes = auth_service.scopes_for(user, key)
        rooms.append(api_key_room(key.id))
        db.session.commit()  # records last_used_at
    else:
        raise AuthenticationFailed("Send {token} or {api_key} in the Socket.IO auth payload.")
    if "read" not in scopes:
        raise AuthenticationFailed("The credential lacks the 'read' scope.", code="INSUFFICIENT_SCOPE")
    return user.id, scopes, rooms


def _symbols_arg(data: Any) -> list[str] | None:
    raw = data.get("symbols") if isinstance(data, dict) else data
    if isinstance(raw, str):
        raw = [s for s in raw.split(",")]
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        return None
    return list(dict.fromkeys(s.strip().upper() for s in raw if s.strip()))


class LiveNamespace(Namespace):
    def __init__(self, namespace: str = NAMESPACE) -> None:
        super().__init__(namespace)
        self.clients: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _feed(self):
        from backend.realtime.feed import get_feed

        return get_feed(current_app._get_current_object())

    def on_connect(self, auth: Any = None) -> None:
        try:
            self._on_connect(auth)
        except ConnectionRefusedError:
            raise
        except Exception:
            # Flask-SocketIO retries a handler that raised TypeError without ``auth``: never let an
            # internal error turn into an anonymous second attempt.
            log.exception("socket.io connect failed")
            raise ConnectionRefusedError(
                "Connection failed.", {"code": "INTERNAL_ERROR", "message": "Connection failed."}
            ) from None

    def _on_connect(self, auth: Any) -> None:
        try:
            user_id, scopes, credential_rooms = _authenticate(auth)
        except AuthenticationFailed as exc:
            db.session.rollback()
            # (message, data): the client's connect_error gets the reason and {code, message} as data;
            # a lone dict would reach it as its Python repr
            raise ConnectionRefusedError(exc.message, {"code": exc.code, "message": exc.message}) from None
        finally:
            db.session.remove()
        sid = request.sid  # type: ignore[attr-defined]
        with self._lock:
            self.clients[sid] = {
                "user_id": user_id,
                "scopes": scopes,
                "symbols": set(),
                "mode": self._default_mode(),
            }
        from backend.observability.metrics import SOCKETIO_CONNECTIONS

        SOCKETIO_CONNECTIONS.inc()
        join_room(user_room(user_id))
        for room in credential_rooms:  # so revoking the credential can find its connections
            join_room(room)
        emit(
            "ready",
            {"user_id": user_id, "max_subscriptions": self._cap(), "quote_mode": self._default_mode()},
        )

    def on_disconnect(self, reason: Any = None) -> None:
        sid = request.sid  # type: ignore[attr-defined]
        with self._lock:
            client = self.clients.pop(sid, None)
        if client:
            from backend.observability.metrics import SOCKETIO_CONNECTIONS

            SOCKETIO_CONNECTIONS.dec()
            feed = self._feed()
            feed.set_batch(sid, None)
            feed.remove_interest(sid, list(client["symbols"]))

    def _default_mode(self) -> str:
        return str(current_app.config.get("SOCKETIO_QUOTE_MODE", "single"))

    def _cap(self) -> int:
        return int(current_app.config.get("SOCKETIO_MAX_SUBSCRIPTIONS", 100))

    def _error(self, sid: str, code: str, message: str, **details: Any) -> dict[str, Any]:
        body = {"code": code, "message": message, **details}
        emit("error", body)
        return {"ok": False, **body}

    def on_subscribe(self, data: Any = None) -> dict[str, Any]:
        from backend.services import market_data as md

        sid = request.sid  # type: ignore[attr-defined]
        client = self.clients.get(sid)
        if client is None:
            return self._error(sid, "UNAUTHORIZED", "Not connected.")
        wanted = _symbols_arg(data)
        if wanted is None:
            return self._error(sid, "VALIDATION_ERROR", 'Send {symbols: ["SBIN", ...]}.')
        from backend.realtime.feed import QUOTE_MODES

        mode = data.get("mode") if isinstance(data, dict) else None
        if mode is not None and mode not in QUOTE_MODES:
            return self._error(
                sid, "VALIDATION_ERROR", f"mode must be one of {', '.join(QUOTE_MODES)}.", field="mode"
            )
        try:
            known, unknown = md.known_symbols(wanted)
        finally:
            db.session.remove()
        if unknown:
            # Subscribe nothing from a request that names an unknown symbol: the client fixes it.
            return self._error(
                sid, "UNKNOWN_SYMBOL", f"Unknown symbol(s): {', '.join(unknown)}.", symbols=unknown
            )
        new = [s for s in known if s not in client["symbols"]]
        cap = self._cap()
        if len(client["symbols"]) + len(new) > cap:
            return self._error(
                sid,
                "SUBSCRIPTION_LIMIT",
                f"At most {cap} symbols per connection.",
                limit=cap,
                current=len(client["symbols"]),
            )
        old_mode = client["mode"]
        client["mode"] = mode or old_mode
        # Single mode: the quote rooms. Batch mode: no rooms (a client gets either `quote` or
        # `quotes`, never both); the feed's per-process fan-out addresses the sid directly.
        if client["mode"] == "single":
            for s in new if old_mode == "single" else [*client["symbols"], *new]:
                join_room(quote_room(s))
        elif old_mode == "single":
            for s in client["symbols"]:
                leave_room(quote_room(s))
        client["symbols"].update(new)
        feed = self._feed()
        feed.add_interest(sid, new)
        feed.set_batch(sid, client["symbols"] if client["mode"] == "batch" else None)
        body: dict[str, Any] = {"symbols": sorted(client["symbols"]), "added": new}
        if mode is not None:
            body["mode"] = client["mode"]
        emit("subscribed", body)
        return {"ok": True, **body}

    def on_unsubscribe(self, data: Any = None) -> dict[str, Any]:
        sid = request.sid  # type: ignore[attr-defined]
        client = self.clients.get(sid)
        if client is None:
            return self._error(sid, "UNAUTHORIZED", "Not connected.")
        wanted = _symbols_arg(data)
        if wanted is None:
            return self._error(sid, "VALIDATION_ERROR", 'Send {symbols: ["SBIN", ...]}.')
        removed = [s for s in wanted if s in client["symbols"]]
        for s in removed:
            leave_room(quote_room(s))
            client["symbols"].discard(s)
        feed = self._feed()
        feed.remove_interest(sid, removed)
        if client["mode"] == "batch":
            feed.set_batch(sid, client["symbols"])
        body = {"symbols": sorted(client["symbols"]), "removed": removed}
        emit("unsubscribed", body)
        return {"ok": True, **body}

    def on_ping(self, data: Any = None) -> dict[str, Any]:
        """Application-level ping (the ack carries the server time, for latency checks)."""
        import time

        return {"ok": True, "server_ms": int(time.time() * 1000)}
