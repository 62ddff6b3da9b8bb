"""A local imitation of Upstox's Market Data Feed V3 for tests: authorize + websocket, real frames.

``FeedStub()`` serves on 127.0.0.1 (werkzeug, threaded, a free port):

* ``GET /v3/feed/market-data-feed/authorize`` with ``Authorization: Bearer <token>``: 200
  ``{"status": "success", "data": {"authorized_redirect_uri": "ws://.../feeds?requestId=&code="}}``
  for the current token, else 401 ``UDAPI100050`` in Upstox's error shape. Codes are single-use.
* ``/feeds?code=``: the websocket. First frame ``market_info`` (segment statuses); after each
  ``sub`` / ``change_mode`` an ``initial_feed`` snapshot of those keys; :meth:`push` sends
  ``live_feed`` frames to every connection subscribed to the key, in that connection's mode.
  All frames are ``FeedResponse`` protobufs serialized with the compiled MarketDataFeedV3 module.

Failure controls: :meth:`stall` (send nothing, the socket stays open), :meth:`disconnect_all`,
:meth:`expire_token` (the 03:30 rollover: the old token gets 401 and open sockets close),
:meth:`send_raw` (e.g. a malformed frame).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import simple_websocket
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from backend.domain.market.upstox_feed import MarketDataFeedV3_pb2 as pb

MODE_ENUM = {"ltpc": pb.ltpc, "full": pb.full_d5, "option_greeks": pb.option_greeks}


@dataclass
class StubQuote:
    ltp: float
    cp: float = 0.0  # previous close
    ltt: int = 1_700_000_000_000  # ms epoch
    ltq: int = 1
    bid: float = 0.0
    ask: float = 0.0
    bid_qty: int = 10
    ask_qty: int = 10
    vtt: int = 0
    oi: float = 0.0
    iv: float = 0.0
    delta: float = 0.0
    theta: float = 0.0
    gamma: float = 0.0
    vega: float = 0.0
    atp: float = 0.0


def _ltpc(q: StubQuote) -> pb.LTPC:
    return pb.LTPC(ltp=q.ltp, ltt=q.ltt, ltq=q.ltq, cp=q.cp)


def _greeks(q: StubQuote) -> pb.OptionGreeks:
    return pb.OptionGreeks(delta=q.delta, theta=q.theta, gamma=q.gamma, vega=q.vega)


def feed_for(key: str, mode: str, q: StubQuote) -> pb.Feed:
    """The ``Feed`` Upstox sends for ``key`` in ``mode`` (index keys get ``indexFF`` in full)."""
    if mode == "ltpc":
        return pb.Feed(ltpc=_ltpc(q), requestMode=pb.ltpc)
    if mode == "option_greeks":
        return pb.Feed(
            firstLevelWithGreeks=pb.FirstLevelWithGreeks(
                ltpc=_ltpc(q),
                firstDepth=pb.Quote(bidQ=q.bid_qty, bidP=q.bid, askQ=q.ask_qty, askP=q.ask),
                optionGreeks=_greeks(q),
                vtt=q.vtt,
                oi=q.oi,
                iv=q.iv,
            ),
            requestMode=pb.option_greeks,
        )
    day = pb.OHLC(
        interval="1d", open=q.cp, high=max(q.ltp, q.cp), low=min(q.ltp, q.cp), close=q.ltp, vol=q.vtt
    )
    if key.startswith("NSE_INDEX|"):
        ff = pb.FullFeed(indexFF=pb.IndexFullFeed(ltpc=_ltpc(q), marketOHLC=pb.MarketOHLC(ohlc=[day])))
    else:
        levels = [
            pb.Quote(bidQ=q.bid_qty * (i + 1), bidP=q.bid - i * 0.05, askQ=q.ask_qty, askP=q.ask + i * 0.05)
            for i in range(5)
        ]
        ff = pb.FullFeed(
            marketFF=pb.MarketFullFeed(
                ltpc=_ltpc(q),
                marketLevel=pb.MarketLevel(bidAskQuote=levels),
                optionGreeks=_greeks(q),
                marketOHLC=pb.MarketOHLC(ohlc=[day]),
                atp=q.atp,
                vtt=q.vtt,
                oi=q.oi,
                iv=q.iv,
                tbq=1000,
                tsq=900,
            )
        )
    return pb.Feed(fullFeed=ff, requestMode=pb.full_d5)


def response(ftype: int, feeds: dict[str, pb.Feed], ts_ms: int | None = None) -> bytes:
    msg = pb.FeedResponse(type=ftype, currentTs=ts_ms or int(time.time() * 1000))
    for k, f in feeds.items():
        msg.feeds[k].CopyFrom(f)
    return msg.SerializeToString()


def market_info_frame() -> bytes:
    msg = pb.FeedResponse(type=pb.market_info, currentTs=int(time.time() * 1000))
    for seg in ("NSE_EQ", "NSE_FO", "NSE_INDEX"):
        msg.marketInfo.segmentStatus[seg] = pb.NORMAL_OPEN
    return msg.SerializeToString()


class _Conn:
    def __init__(self, ws: simple_websocket.Server, token: str) -> None:
        self.ws = ws
        self.token = token
        self.modes: dict[str, str] = {}  # key -> mode
        self.lock = threading.Lock()
        self.stalled = False  # open but silent: the failure a reconnect cures

    def send(self, data: bytes) -> None:
        with self.lock:
            self.ws.send(data)


@dataclass
class FeedStub:
    access_token: str = "feed-token"
    quotes: dict[str, StubQuote] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)  # subscription requests received
    authorize_calls: list[str] = field(default_factory=list)  # tokens presented

    def __post_init__(self) -> None:
        self._codes: set[str] = set()
        self._conns: list[_Conn] = []
        self._lock = threading.Lock()
        self.stalled = threading.Event()
        self.revoked: set[str] = set()  # tokens whose sockets are dropped
        self.connections = 0
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.port = self._server.server_port
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ controls

    def close(self) -> None:
        self.disconnect_all()
        self._server.shutdown()

    def open_connections(self) -> list[_Conn]:
        with self._lock:
            return [c for c in self._conns if c.ws.connected]

    def subscribed(self) -> dict[str, str]:
        """key -> mode over the open connections."""
        out: dict[str, str] = {}
        for c in self.open_connections():
            out.update(c.modes)
        return out

    def push(self, key: str, **changes: Any) -> int:
        """Update ``key``'s quote and send one live_feed frame to its subscribers; returns sends."""
        q = self.quotes[key]
        for name, value in changes.items():
            setattr(q, name, value)
        sent = 0
        for c in self.open_connections():
            if c.stalled or self.stalled.is_set():
                continue
            mode = c.modes.get(key)
            if mode is not None:
                c.send(response(pb.live_feed, {key: feed_for(key, mode, q)}))
                sent += 1
        return sent

    def send_raw(self, data: bytes | str) -> None:
        for c in self.open_connections():
            with c.lock:
                c.ws.send(data)

    def stall(self, everywhere: bool = False) -> None:
        """Open sockets go silent (``everywhere``: new ones too, until :meth:`resume`)."""
        for c in self.open_connections():
            c.stalled = True
        if everywhere:
            self.stalled.set()

    def resume(self) -> None:
        self.stalled.clear()
        for c in self.open_connections():
            c.stalled = False

    def disconnect_all(self) -> None:
        for c in self.open_connections():
            with contextlib.suppress(Exception):  # already gone
                c.ws.close()

    def expire_token(self, new_token: str | None = None) -> None:
        """The daily rollover: the old token stops working and its sockets are dropped."""
        self.revoked.add(self.access_token)
        self.access_token = new_token or f"rolled-{uuid.uuid4().hex[:8]}"
        self.disconnect_all()

    # ------------------------------------------------------------------ WSGI

    def _wsgi(self, environ: dict, start_response: Any) -> Any:
        req = Request(environ)
        if req.path == "/v3/feed/market-data-feed/authorize":
            return self._authorize(req)(environ, start_response)
        if req.path == "/feeds":
            code = req.args.get("code", "")
            with self._lock:
                ok = code in self._codes
                self._codes.discard(code)  # single use, as documented
            if not ok:
                return Response("invalid or used code", status=403)(environ, start_response)
            return self._serve_ws(environ)
        return Response("not found", status=404)(environ, start_response)

    def _authorize(self, req: Request) -> Response:
        token = req.headers.get("Authorization", "").removeprefix("Bearer ")
        self.authorize_calls.append(token)
        if token != self.access_token:
            err = {
                "errorCode": "UDAPI100050",
                "message": "Invalid token used to access API",
                "propertyPath": None,
                "invalidValue": None,
                "error_code": "UDAPI100050",
                "property_path": None,
                "invalid_value": None,
            }
            return Response(
                json.dumps({"status": "error", "errors": [err]}), 401, mimetype="application/json"
            )
        code = uuid.uuid4().hex
        with self._lock:
            self._codes.add(code)
        uri = f"ws://127.0.0.1:{self.port}/feeds?requestId={uuid.uuid4()}&code={code}"
        body = {"status": "success", "data": {"authorized_redirect_uri": uri, "authorizedRedirectUri": uri}}
        return Response(json.dumps(body), 200, mimetype="application/json")

    def _serve_ws(self, environ: dict) -> Any:
        ws = simple_websocket.Server(environ)
        conn = _Conn(ws, self.access_token)
        with self._lock:
            self._conns.append(conn)
            self.connections += 1
        try:
            if not self.stalled.is_set():
                conn.send(market_info_frame())
            while ws.connected:
                if conn.token in self.revoked:
                    ws.close()  # the token this socket was opened with has expired
                    break
                try:
                    msg = ws.receive(timeout=0.05)
                except simple_websocket.ConnectionClosed:
                    break
                if msg is None:
                    continue
                self._handle(conn, msg)
        finally:
            with self._lock:
                if conn in self._conns:
                    self._conns.remove(conn)
        return _Closed()

    def _handle(self, conn: _Conn, msg: bytes | str) -> None:
        body = json.loads(msg)
        self.requests.append(body)
        method = body.get("method")
        data = body.get("data") or {}
        keys = list(data.get("instrumentKeys") or [])
        mode = data.get("mode") or "ltpc"  # documented default of sub
        if method == "unsub":
            for k in keys:
                conn.modes.pop(k, None)
            return
        if method in ("sub", "change_mode"):
            for k in keys:
                conn.modes[k] = mode
            snap = {k: feed_for(k, mode, self.quotes[k]) for k in keys if k in self.quotes}
            if snap and not (conn.stalled or self.stalled.is_set()):
                conn.send(response(pb.initial_feed, snap))


class _Closed:
    """The WSGI body after a websocket: werkzeug drops the connection quietly on ConnectionError."""

    def __iter__(self) -> Any:
        raise ConnectionError("websocket closed")
