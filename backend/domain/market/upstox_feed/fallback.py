"""Socket first, REST when it fails: which symbols a feed cycle must still poll.

The feed producer calls :meth:`FeedRouter.cycle` once per interval with every wanted symbol.
The router keeps the websocket subscription equal to that set (within Upstox's key limit; the
surplus stays on REST) and polls over REST exactly the symbols the socket is not delivering right
now: all of them while the socket is down, stalled or re-authorizing, none once it streams them.
So the switch to REST and back needs no extra signal: it follows :meth:`UpstoxMarketStream.streamed`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from backend.domain.market.types import Tick
from backend.domain.market.upstox_feed.client import UpstoxMarketStream
from backend.domain.market.upstox_feed.protocol import FeedLimitExceeded, limit_for

log = logging.getLogger(__name__)

Poll = Callable[[list[str], datetime], list[Tick]]


class FeedRouter:
    def __init__(self, stream: UpstoxMarketStream, poll: Poll) -> None:
        self.stream = stream
        self.poll = poll
        self.source = "rest"  # socket | rest | mixed (last cycle)
        self.switches = 0
        self.over_limit: list[str] = []  # symbols kept on REST because of the key limit

    def cycle(self, symbols: list[str], now: datetime) -> list[Tick]:
        """REST ticks for the symbols the socket does not cover this cycle (socket ticks flow by
        themselves through the stream's sink)."""
        self._subscribe(symbols)
        streamed = self.stream.streamed(symbols)
        rest = [s for s in symbols if s not in streamed]
        source = "socket" if not rest else ("rest" if not streamed else "mixed")
        if source != self.source:
            self.switches += 1
            log.info("market data source %s -> %s", self.source, source)
            self.source = source
        return self.poll(rest, now) if rest else []

    def _subscribe(self, symbols: list[str]) -> None:
        try:
            self.stream.want(symbols)
            self.over_limit = []
        except FeedLimitExceeded as exc:
            # Upstox would drop keys beyond its limit: stream the first ones, poll the rest.
            limit = limit_for(self.stream.mode, 1)
            self.stream.want(symbols[:limit])
            if self.over_limit != symbols[limit:]:
                log.error("%s; %d symbols stay on REST polling", exc.message, len(symbols) - limit)
            self.over_limit = symbols[limit:]
