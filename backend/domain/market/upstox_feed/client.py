"""The Upstox V3 market-data websocket client: authorize, connect, subscribe, decode, supervise.

One daemon thread owns the socket (websocket-client, synchronous ``recv`` with a timeout, so the
same loop runs the watchdog, applies subscription changes and watches the token):

* each connection authorizes anew (the redirect URI is single-use) with the token from
  ``token_provider`` (the token store, resolved on every call) and re-sends the whole wanted
  subscription, so a reconnect or a new token re-subscribes on its own;
* a socket silent for ``stall_timeout`` while data is expected (``expect_data``, e.g. the session
  is open) is closed by the watchdog; outside that, silence is answered with a ping and only an
  unanswered ping closes it (Upstox pings idle sockets itself);
* a different token from the store (a fresh login, the 03:30 IST rollover re-login) closes the
  socket and reconnects with it; an authorize answered 401 (UDAPI100050) parks the stream until the
  store holds another token;
* reconnects back off exponentially (:class:`backend.domain.ws_supervisor.Backoff`), reset after a
  connection delivered data;
* a malformed frame or an unknown instrument key is logged and counted, never fatal.

Ticks go to ``sink`` (the feed service publishes them on the tick bus). :meth:`streamed` tells the
caller which symbols the socket is delivering right now; everything else must be polled over REST.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import requests
import websocket
from prometheus_client import Counter, Gauge

from backend.domain.errors import BrokerTokenExpired, BrokerUnavailable, NotFound
from backend.domain.market.types import Tick
from backend.domain.upstox_http import handle_response
from backend.domain.ws_supervisor import Backoff, Watchdog

from .protocol import (
    AUTHORIZE_PATH,
    DEFAULT_KEYS_PER_REQUEST,
    MODES,
    FrameDecoder,
    MalformedFrame,
    check_limits,
    plan,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

FRAMES = Counter("upstox_feed_frames_total", "Market-data websocket frames decoded", ["type"])
BAD_INPUT = Counter(
    "upstox_feed_bad_input_total", "Malformed frames and unknown instrument keys (skipped)", ["reason"]
)
RECONNECTS = Counter("upstox_feed_reconnects_total", "Market-data websocket sessions ended", ["reason"])
CONNECTED = Gauge("upstox_feed_connected", "1 while the market-data websocket is connected")
# A token Upstox answered 401 is retried only this late (unless the store holds a new one first):
# the 03:30 IST expiry is final, a re-login brings a different token.
REJECTED_TOKEN_RETRY_SECONDS = 300.0


class _Keys:
    """Symbol <-> instrument key through an InstrumentLookup (by_symbol / by_key)."""

    def __init__(self, instruments: Any) -> None:
        self.instruments = instruments

    def key_for(self, symbol: str) -> str | None:
        try:
            return self.instruments.by_symbol(symbol).instrument_key
        except (NotFound, KeyError):
            return None

    def symbol_for(self, instrument_key: str) -> str | None:
        ins = self.instruments.by_key(instrument_key)
        return ins.trading_symbol if ins is not None else None


def _direct(fn: Callable[[], T]) -> T:
    return fn()


class UpstoxMarketStream:
    def __init__(
        self,
        token_provider: Callable[[], str],
        instruments: Any,
        sink: Callable[[list[Tick]], None],
        base_url: str = "https://api.upstox.com",
        mode: str = "ltpc",
        stall_timeout: float = 5.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        token_check_seconds: float = 5.0,
        keys_per_request: int = DEFAULT_KEYS_PER_REQUEST,
        connect_timeout: float = 5.0,
        call_wrapper: Callable[[Callable[[], Any]], Any] | None = None,
        session: requests.Session | None = None,
        expect_data: Callable[[], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.token_provider = token_provider
        self.keys = _Keys(instruments)
        self.sink = sink
        self.base_url = base_url.rstrip("/")
        self.mode = mode
        self.stall_timeout = float(stall_timeout)
        self.backoff = Backoff(backoff_initial, backoff_max)
        self.token_check_seconds = float(token_check_seconds)
        self.keys_per_request = keys_per_request
        self.connect_timeout = float(connect_timeout)
        self.call_wrapper = call_wrapper or _direct
        self.http = session or requests.Session()
        self.expect_data = expect_data or (lambda: True)
        self.clock = clock
        self.decoder = FrameDecoder(self.keys)
        self.watchdog = Watchdog(self.stall_timeout, clock)

        self._lock = threading.Lock()
        self._wanted: dict[str, set[str]] = {}  # mode -> instrument keys
        self._current: dict[str, set[str]] = {}  # what the open socket was told
        self._seen: set[str] = set()  # symbols ticked on the open socket
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ws: websocket.WebSocket | None = None
        self._rejected_token: str | None = None
        self._rejected_at = 0.0
        self.connected = False
        self.state = "stopped"
        self.segment_status: dict[str, str] = {}
        # counters (also exported to Prometheus above)
        self.connections = 0
        self.authorizations = 0
        self.frames = 0
        self.ticks = 0
        self.malformed = 0
        self.unknown_keys = 0
        self.sink_errors = 0
        self.reconnects: dict[str, int] = {}
        self.last_error: str | None = None

    # ------------------------------------------------------------------ subscriptions

    def want(self, symbols: Iterable[str], mode: str | None = None) -> list[str]:
        """Subscribe exactly ``symbols`` in ``mode`` (default: the configured one).

        Returns the symbols without an instrument key (not subscribed). FeedLimitExceeded when
        over Upstox's key limit: nothing changes then."""
        return self.set_wanted({mode or self.mode: symbols})

    def set_wanted(self, by_mode: Mapping[str, Iterable[str]]) -> list[str]:
        wanted: dict[str, set[str]] = {}
        missing: list[str] = []
        taken: set[str] = set()
        for mode, symbols in by_mode.items():
            keys: set[str] = set()
            for s in symbols:
                k = self.keys.key_for(s)
                if k is None:
                    missing.append(s)
                elif k not in taken:  # one mode per key: the first mode named wins
                    keys.add(k)
                    taken.add(k)
            if keys:
                wanted[mode] = keys
        check_limits(wanted)
        with self._lock:
            self._wanted = wanted
        return missing

    def wanted_keys(self) -> dict[str, set[str]]:
        with self._lock:
            return {m: set(k) for m, k in self._wanted.items()}

    def streamed(self, symbols: Iterable[str] | None = None) -> set[str]:
        """Symbols the socket is delivering now: subscribed, ticked on this connection, not stalled."""
        if not self.healthy():
            return set()
        with self._lock:
            seen = set(self._seen)
        return seen if symbols is None else seen & set(symbols)

    def healthy(self) -> bool:
        return self.connected and not (self.expect_data() and self.watchdog.stalled())

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True, name="upstox-market-feed")
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        ws = self._ws
        if ws is not None:
            try:
                ws.abort()  # unblocks the reader thread's recv
            except Exception:  # noqa: BLE001 - closing a broken socket
                log.debug("feed socket abort failed", exc_info=True)
        if self._thread is not None:
            self._thread.join(timeout)
        self.state = "stopped"

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "connected": self.connected,
            "healthy": self.healthy(),
            "mode": self.mode,
            "subscribed": sum(len(k) for k in self.wanted_keys().values()),
            "streamed": len(self.streamed()),
            "silence_seconds": round(self.watchdog.silence(), 3) if self.connected else None,
            "connections": self.connections,
            "frames": self.frames,
            "ticks": self.ticks,
            "malformed_frames": self.malformed,
            "unknown_keys": self.unknown_keys,
            "reconnects": dict(self.reconnects),
            "segment_status": dict(self.segment_status),
            "last_error": self.last_error,
        }

    # ------------------------------------------------------------------ the loop

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._attempt()
            except Exception as exc:  # noqa: BLE001 - the stream thread must outlive any failure
                log.exception("upstox feed loop error")
                self._ended("error")
                self._park("error", exc, self.backoff.next_delay())
        self.state = "stopped"

    def _attempt(self) -> None:
        """One authorize + connect + session, or one wait; the loop calls it until stopped."""
        try:
            token = self.token_provider()
        except Exception as exc:  # noqa: BLE001 - no token (DomainError) or the store is unreadable
            self._park("no_token", exc, self.token_check_seconds)
            return
        if token == self._rejected_token and self.clock() - self._rejected_at < REJECTED_TOKEN_RETRY_SECONDS:
            self._park("token_expired", None, self.token_check_seconds)
            return
        try:
            url = self._authorize(token)
        except BrokerTokenExpired as exc:
            # 401: wait for the store to hold another token (a fresh login) instead of hammering
            self._rejected_token, self._rejected_at = token, self.clock()
            self._ended("token_expired")
            self._park("token_expired", exc, 0)
            return
        except Exception as exc:  # noqa: BLE001 - any authorize failure: back off, retry
            self._ended("authorize_failed")
            self._park("authorize_failed", exc, self.backoff.next_delay())
            return
        try:
            ws = websocket.create_connection(
                url, timeout=self.connect_timeout, enable_multithread=True, skip_utf8_validation=True
            )
        except Exception as exc:  # noqa: BLE001 - refused, reset, handshake error: back off
            self._ended("connect_failed")
            self._park("connect_failed", exc, self.backoff.next_delay())
            return
        reason, delivered = self._session(ws, token)
        self._ended(reason)
        if self._stop.is_set():
            return
        if delivered:
            self.backoff.reset()
        if reason != "token_changed":  # a new token reconnects at once
            self.state = "reconnecting"
            self._stop.wait(self.backoff.next_delay())

    def _park(self, state: str, exc: BaseException | None, delay: float) -> None:
        self.state = state
        if exc is not None:
            self.last_error = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
            log.warning("upstox feed %s: %s", state, self.last_error)
        self._stop.wait(delay)

    def _ended(self, reason: str) -> None:
        self.reconnects[reason] = self.reconnects.get(reason, 0) + 1
        RECONNECTS.labels(reason=reason).inc()

    def _authorize(self, token: str) -> str:
        url = f"{self.base_url}{AUTHORIZE_PATH}"

        def call() -> Any:
            headers = {"Accept": "application/json", "Authorization": f"Bearer {token}"}
            try:
                resp = self.http.get(url, headers=headers, timeout=self.connect_timeout)
            except requests.RequestException as exc:
                raise BrokerUnavailable(f"Upstox feed authorize failed: {type(exc).__name__}") from exc
            return handle_response(resp)

        data = self.call_wrapper(call) or {}
        self.authorizations += 1
        uri = data.get("authorized_redirect_uri") or data.get("authorizedRedirectUri")
        if not uri:
            raise BrokerUnavailable("Upstox feed authorize answered without authorized_redirect_uri")
        return str(uri)

    def _session(self, ws: websocket.WebSocket, token: str) -> tuple[str, bool]:
        """Serve one connection until it ends; returns (why it ended, whether it delivered ticks)."""
        self._ws = ws
        with self._lock:
            self._current = {}
            self._seen = set()
        self.decoder.reset()
        self.watchdog.feed()
        self.connected = True
        self.connections += 1
        CONNECTED.set(1)
        self.state = "streaming"
        self._rejected_token = None
        delivered = False
        pinged = False
        last_token_check = self.clock()
        poll = max(min(self.stall_timeout / 4, 0.25), 0.01)
        try:
            while not self._stop.is_set():
                try:
                    self._sync_subscriptions(ws)
                except (websocket.WebSocketException, OSError):
                    return "disconnected", delivered
                if self.clock() - last_token_check >= self.token_check_seconds:
                    last_token_check = self.clock()
                    if self._token_changed(token):
                        return "token_changed", delivered
                expecting = self.expect_data()
                if self.watchdog.stalled():
                    if expecting or pinged:
                        log.warning("upstox feed silent for %.1fs: closing", self.watchdog.silence())
                        return "stalled", delivered
                    ws.ping()  # market closed: Upstox is quiet, ask whether the socket lives
                    pinged = True
                    self.watchdog.last = self.clock() - self.stall_timeout / 2  # half a timeout to answer
                ws.settimeout(max(min(poll, self.watchdog.remaining()), 0.01))
                try:
                    opcode, payload = ws.recv_data(control_frame=True)
                except websocket.WebSocketTimeoutException:
                    continue
                except (websocket.WebSocketConnectionClosedException, OSError, websocket.WebSocketException):
                    return "disconnected", delivered
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    return "closed", delivered
                if opcode in (websocket.ABNF.OPCODE_PING, websocket.ABNF.OPCODE_PONG):
                    if not expecting:
                        self.watchdog.feed()
                        pinged = False
                    continue
                if opcode == websocket.ABNF.OPCODE_TEXT:
                    self._bad("text_frame", "text frame on a binary feed")
                    continue
                if self._on_data(payload):
                    delivered = True
                    pinged = False
            return "stopped", delivered
        finally:
            self.connected = False
            CONNECTED.set(0)
            self._ws = None
            try:
                ws.close(timeout=0.2)
            except Exception:  # noqa: BLE001 - already broken
                log.debug("feed socket close failed", exc_info=True)

    def _token_changed(self, token: str) -> bool:
        try:
            return self.token_provider() != token
        except Exception:  # noqa: BLE001 - no token / store unreadable now: keep the socket while it works
            return False

    def _sync_subscriptions(self, ws: websocket.WebSocket) -> None:
        with self._lock:
            wanted = {m: set(k) for m, k in self._wanted.items()}
            current = self._current
        if wanted == current:
            return
        for frame in plan(current, wanted, self.keys_per_request):
            ws.send(frame, opcode=websocket.ABNF.OPCODE_BINARY)
        gone = {self.keys.symbol_for(k) for m, ks in current.items() for k in ks} - {
            self.keys.symbol_for(k) for ks in wanted.values() for k in ks
        }
        with self._lock:
            self._current = wanted
            self._seen -= gone

    def _bad(self, reason: str, message: str) -> None:
        if reason == "unknown_key":
            self.unknown_keys += 1
        else:
            self.malformed += 1
        BAD_INPUT.labels(reason=reason).inc()
        log.warning("upstox feed %s: %s", reason, message)

    def _on_data(self, payload: bytes) -> bool:
        """Decode one frame and hand its ticks to the sink; True when it carried ticks."""
        self.frames += 1
        try:
            frame = self.decoder.decode(payload)
        except MalformedFrame as exc:
            self._bad("malformed", str(exc))
            return False
        FRAMES.labels(type=frame.type).inc()
        self.watchdog.feed()
        if frame.segment_status:
            self.segment_status.update(frame.segment_status)
        for key in frame.unknown_keys:
            self._bad("unknown_key", key)
        if not frame.ticks:
            return False
        with self._lock:
            self._seen.update(t.symbol for t in frame.ticks)
        self.ticks += len(frame.ticks)
        try:
            self.sink(frame.ticks)
        except Exception:  # noqa: BLE001 - a failing consumer must not kill the socket
            self.sink_errors += 1
            log.exception("upstox feed sink failed")
        return True
