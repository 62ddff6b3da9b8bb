"""Keeping one broker websocket alive: authorize, connect, watchdog, reconnect with backoff, re-authorize.

Pure Python (no Flask). A ``SocketSupervisor`` owns one connection and loops until stopped:

1. ``authorize()`` returns the socket URL (Upstox hands out a one-time ``wss://`` URL from a REST
   authorize call, so every (re)connect authorizes afresh). A failure that ``is_auth_error`` says is
   about the credential (expired token, revoked connection) waits for the credential to change, polling
   every ``auth_retry_seconds``: hammering the authorize endpoint with a dead token helps no one.
2. ``connect(url)`` opens the socket (websocket-client's ``create_connection`` by default).
3. While connected: a ping every ``ping_interval``; any frame (data, ping or pong) proves the socket
   alive. Nothing for ``silence_timeout`` seconds -> the socket is stalled: it is closed and reopened.
   The ``credential()`` fingerprint is re-read every ``credential_check_seconds``: when it changes (the
   03:30 IST token rollover expired it, or a fresh login replaced it) the socket is closed and the loop
   re-authorizes at once with the new token.
4. A closed or failed socket is reopened after an exponential backoff with jitter, reset once a
   connection proved healthy (it received a frame).

The market-data stream (which manages its own loop) uses :class:`Watchdog` and :class:`Backoff`
alone.

A handler exception is counted and logged, never allowed to end the loop: one bad message must not
stop the feed.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import websocket

log = logging.getLogger(__name__)


Clock = Callable[[], float]


class Watchdog:
    """Tracks the last sign of life; :meth:`stalled` once nothing came for ``timeout`` seconds."""

    def __init__(self, timeout: float, clock: Clock = time.monotonic) -> None:
        self.timeout = float(timeout)
        self.clock = clock
        self.last = clock()

    def feed(self) -> None:
        self.last = self.clock()

    def silence(self) -> float:
        return self.clock() - self.last

    def stalled(self) -> bool:
        return self.silence() > self.timeout

    def remaining(self) -> float:
        return max(self.timeout - self.silence(), 0.0)


@dataclass
class Backoff:
    """Exponential backoff with proportional jitter: initial, initial*factor, ... capped at ``maximum``."""

    initial: float = 1.0
    maximum: float = 60.0
    factor: float = 2.0
    jitter: float = 0.2  # +- this fraction of the delay, so many clients do not reconnect in step
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        base = min(self.maximum, self.initial * (self.factor**self.attempt))
        self.attempt += 1
        spread = base * self.jitter
        return max(0.0, base + self.rng.uniform(-spread, spread))

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class FeedStats:
    """What an operator (and a test) needs to see of one supervised socket."""

    state: str = "idle"  # idle | authorizing | connecting | connected | backoff | auth_wait | stopped
    authorizations: int = 0
    auth_failures: int = 0
    connects: int = 0
    reconnects: int = 0
    reauthorizations: int = 0  # re-authorized because the credential changed (rollover, fresh login)
    stalls: int = 0
    disconnects: int = 0
    messages: int = 0
    malformed: int = 0
    handler_errors: int = 0
    last_error: str = ""
    last_frame_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class SocketSupervisor:
    def __init__(
        self,
        name: str,
        authorize: Callable[[], str],
        handle: Callable[[str | bytes], None],
        *,
        credential: Callable[[], Hashable] = lambda: None,
        is_auth_error: Callable[[BaseException], bool] = lambda exc: False,
        connect: Callable[[str], Any] | None = None,
        on_open: Callable[[Any], None] | None = None,
        silence_timeout: float = 30.0,
        ping_interval: float = 10.0,
        credential_check_seconds: float = 5.0,
        auth_retry_seconds: float = 30.0,
        connect_timeout: float = 10.0,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.authorize = authorize
        self.handle = handle
        self.credential = credential
        self.is_auth_error = is_auth_error
        self.connect = connect or (lambda url: websocket.create_connection(url, timeout=connect_timeout))
        self.on_open = on_open
        self.silence_timeout = silence_timeout
        self.ping_interval = ping_interval
        self.credential_check_seconds = credential_check_seconds
        self.auth_retry_seconds = auth_retry_seconds
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.stats = FeedStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ws: Any = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> threading.Thread:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self.run, daemon=True, name=f"ws-{self.name}")
            self._thread.start()
        return self._thread

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        ws = self._ws
        if ws is not None:
            _close_quietly(ws)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ loop

    def _credential(self) -> Hashable:
        try:
            return self.credential()
        except Exception as exc:  # noqa: BLE001 - an unreadable credential is "no credential", not a crash
            log.warning("feed credential unreadable", extra={"feed": self.name, "error": repr(exc)})
            return None

    def _wait_for_credential(self, seen: Hashable) -> None:
        """After an authorization refused for its credential: wait until it changes (fresh login), or
        ``auth_retry_seconds`` pass (the refusal may have been transient)."""
        self.stats.state = "auth_wait"
        deadline = self.clock() + self.auth_retry_seconds
        step = max(0.01, min(self.credential_check_seconds, self.auth_retry_seconds))
        while not self._stop.is_set() and self.clock() < deadline:
            if self._credential() != seen:
                return
            self._stop.wait(step)

    def _sleep_backoff(self) -> None:
        self.stats.state = "backoff"
        self._stop.wait(self.backoff.next_delay())

    def run(self) -> None:
        first = True
        while not self._stop.is_set():
            seen = self._credential()
            self.stats.state = "authorizing"
            try:
                url = self.authorize()
                self.stats.authorizations += 1
            except Exception as exc:  # noqa: BLE001 - any failure: wait, then authorize again
                self.stats.auth_failures += 1
                self.stats.last_error = f"authorize: {exc}"
                if self.is_auth_error(exc):
                    log.warning(
                        "feed authorization refused; waiting for a new token", extra={"feed": self.name}
                    )
                    self._wait_for_credential(seen)
                else:
                    log.warning("feed authorization failed", extra={"feed": self.name, "error": repr(exc)})
                    self._sleep_backoff()
                continue
            self.stats.state = "connecting"
            try:
                ws = self.connect(url)
            except Exception as exc:  # noqa: BLE001 - refused / unreachable: back off and retry
                self.stats.last_error = f"connect: {exc}"
                self._sleep_backoff()
                continue
            self._ws = ws
            self.stats.connects += 1
            if not first:
                self.stats.reconnects += 1
            first = False
            reason = "closed"
            try:
                if self.on_open is not None:
                    self.on_open(ws)
                reason = self._pump(ws, seen)
            except Exception as exc:  # noqa: BLE001 - a broken socket is reopened, whatever broke it
                self.stats.last_error = f"socket: {exc}"
                reason = "error"
            finally:
                self._ws = None
                _close_quietly(ws)
            if reason == "stopped" or self._stop.is_set():
                break
            if reason == "credential":
                self.stats.reauthorizations += 1
                self.backoff.reset()
                continue  # a new token: authorize with it at once
            self.stats.disconnects += 1
            log.warning("feed socket lost; reconnecting", extra={"feed": self.name, "reason": reason})
            self._sleep_backoff()
        self.stats.state = "stopped"

    def _pump(self, ws: Any, seen: Hashable) -> str:
        """Read frames until the socket closes, stalls, the credential changes or we are stopped."""
        self.stats.state = "connected"
        tick = max(0.01, min(self.ping_interval, self.silence_timeout, self.credential_check_seconds) / 2)
        ws.settimeout(tick)
        now = self.clock()
        last_frame = last_ping = last_check = now
        while not self._stop.is_set():
            now = self.clock()
            if now - last_check >= self.credential_check_seconds:
                last_check = now
                if self._credential() != seen:
                    return "credential"
            if now - last_frame > self.silence_timeout:
                self.stats.stalls += 1
                log.warning("feed socket silent; closing it", extra={"feed": self.name})
                return "stalled"
            if now - last_ping >= self.ping_interval:
                last_ping = now
                ws.ping()
            try:
                opcode, frame = ws.recv_data_frame(True)
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketConnectionClosedException, OSError):
                return "closed"
            last_frame = self.clock()
            self.stats.last_frame_at = last_frame
            self.backoff.reset()  # this connection is healthy: the next failure starts the backoff anew
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return "closed"
            if opcode not in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                continue  # ping / pong: liveness only
            self.stats.messages += 1
            data = frame.data
            try:
                self.handle(data)
            except Exception:  # noqa: BLE001 - one bad message never stops the feed
                self.stats.handler_errors += 1
                log.exception("feed message handler failed", extra={"feed": self.name})
        return "stopped"


def _close_quietly(ws: Any) -> None:
    # closing an already broken socket may raise anything; it is being dropped either way
    with contextlib.suppress(Exception):
        ws.close(timeout=1)
    with contextlib.suppress(Exception):
        ws.shutdown()
