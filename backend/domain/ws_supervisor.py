"""Reusable pieces for supervising a long-lived websocket: a silence watchdog and reconnect backoff.

Broker streams (the Upstox market-data feed, the portfolio stream) fail the same ways: the socket
closes, or stays open and goes silent. :class:`Watchdog` tells when a socket has been silent
too long; :class:`Backoff` spaces reconnect attempts (tenacity's exponential wait with jitter)
and starts over once a connection has proved healthy. Pure Python, no threads of its own: the
stream's own loop calls them, so tests drive them with a fake clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tenacity import RetryCallState, wait_exponential_jitter

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


class Backoff:
    """Delays between reconnect attempts: ``initial * 2**n`` plus jitter, capped at ``maximum``.

    :meth:`reset` after a connection delivered data, so the next outage starts small again."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0, jitter: float | None = None) -> None:
        self.initial = max(float(initial), 0.0)
        self.maximum = max(float(maximum), self.initial)
        self._wait = wait_exponential_jitter(
            multiplier=self.initial, max=self.maximum, jitter=self.initial if jitter is None else jitter
        )
        self.attempts = 0

    def next_delay(self) -> float:
        self.attempts += 1
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = self.attempts
        return min(float(self._wait(state)), self.maximum)

    def reset(self) -> None:
        self.attempts = 0
