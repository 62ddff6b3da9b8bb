"""In-process tick dispatch: how other domains receive live ticks.

    from backend.realtime.bus import tick_bus

    def on_tick(tick):                      # tick: backend.domain.market.types.Tick
        ...                                 # match paper orders, trigger stops, evaluate alerts

    sub = tick_bus.subscribe(on_tick, symbols=lambda: {"SBIN", "NIFTY"})
    ...
    tick_bus.unsubscribe(sub)

Callbacks run synchronously in the feed *producer* thread, inside an app context, in the one
process that currently holds the feed leadership, so each tick is handled exactly once across all
workers (no double fills). Keep them fast; hand slow work to a queue. A callback that raises is
logged and counted, and never stops the feed or other subscribers.

``symbols`` (optional) returns the symbols this subscriber needs even when no browser watches
them (e.g. instruments with open stop-losses); the feed polls it once per tick cycle.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from backend.domain.market.types import Tick

log = logging.getLogger(__name__)

TickCallback = Callable[[Tick], None]
SymbolSource = Callable[[], Iterable[str]]


@dataclass(frozen=True)
class Subscription:
    id: int
    callback: TickCallback
    symbols: SymbolSource | None = None
    name: str = ""


class TickBus:
    def __init__(self) -> None:
        self._subs: dict[int, Subscription] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.errors = 0
        self.delivered = 0

    def subscribe(
        self, callback: TickCallback, symbols: SymbolSource | None = None, name: str = ""
    ) -> Subscription:
        sub = Subscription(next(self._ids), callback, symbols, name or getattr(callback, "__qualname__", ""))
        with self._lock:
            self._subs[sub.id] = sub
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.pop(sub.id, None)

    def clear(self) -> None:
        with self._lock:
            self._subs.clear()

    def subscribers(self) -> list[Subscription]:
        with self._lock:
            return list(self._subs.values())

    def wanted_symbols(self) -> set[str]:
        """Union of the symbols every subscriber asks the feed to produce."""
        out: set[str] = set()
        for sub in self.subscribers():
            if sub.symbols is None:
                continue
            try:
                out.update(s.upper() for s in sub.symbols())
            except Exception:  # noqa: BLE001 - one faulty subscriber must not stop the feed
                self.errors += 1
                log.exception("tick subscriber symbol source failed", extra={"subscriber": sub.name})
        return out

    def publish(self, ticks: Iterable[Tick]) -> None:
        subs = self.subscribers()
        if not subs:
            return
        for tick in ticks:
            for sub in subs:
                try:
                    sub.callback(tick)
                    self.delivered += 1
                except Exception:  # noqa: BLE001 - isolate subscribers from each other
                    self.errors += 1
                    log.exception("tick subscriber failed", extra={"subscriber": sub.name})


tick_bus = TickBus()
