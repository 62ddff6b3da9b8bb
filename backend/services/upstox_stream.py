"""The Upstox market-data websocket inside the live feed (leader process only).

When ``MARKET_DATA_PROVIDER=upstox`` and ``UPSTOX_FEED_ENABLED``, the feed leader builds one
:class:`UpstoxMarketStream` (Upstox allows one connection per app-user) with:

* the same token source as the REST provider (``broker.market_data_token_provider``: the explicit
  ``UPSTOX_ACCESS_TOKEN`` override, else the connection an admin designated for the shared feed),
  re-read every ``UPSTOX_FEED_TOKEN_CHECK_SECONDS`` so a fresh login or the 03:30 IST rollover
  re-authorizes and re-subscribes on its own;
* the authorize call behind the broker's circuit breaker and retries;
* a watchdog that expects data only while the exchange session is open (the calendar);
* a sink that delivers socket ticks exactly like a REST cycle (LTP cache, Socket.IO, tick bus).

Each feed cycle the :class:`FeedRouter` keeps the subscription equal to the wanted symbols and
returns REST ticks only for what the socket is not streaming (all of it while it is down).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from flask import Flask

from backend.domain.market.types import Tick
from backend.domain.market.upstox_feed import UpstoxMarketStream
from backend.domain.market.upstox_feed.fallback import FeedRouter

log = logging.getLogger(__name__)


def enabled(app: Flask) -> bool:
    return app.config.get("MARKET_DATA_PROVIDER") == "upstox" and bool(app.config.get("UPSTOX_FEED_ENABLED"))


def _session_open(app: Flask) -> Callable[[], bool]:
    """Whether the exchange session is open now (cached for a second: the socket loop asks often)."""
    from backend.services import market_calendar

    cache: dict[str, float | bool] = {"at": 0.0, "open": True}

    def is_open() -> bool:
        if time.monotonic() - float(cache["at"]) >= 1.0:
            try:
                with app.app_context():
                    cache["open"] = market_calendar.calendar(app).is_open(market_calendar.now(app))
            except Exception:  # noqa: BLE001 - no calendar: assume open (the strict watchdog)
                log.debug("calendar unavailable for the feed watchdog", exc_info=True)
                cache["open"] = True
            cache["at"] = time.monotonic()
        return bool(cache["open"])

    return is_open


def build_router(app: Flask, instruments: object, sink: Callable[[list[Tick]], None]) -> FeedRouter:
    """A started stream and its router. Call inside an app context (the feed producer)."""
    from backend.services import broker as broker_service
    from backend.services import market_data as md

    cfg = app.config
    stream = UpstoxMarketStream(
        token_provider=broker_service.market_data_token_provider(app),
        instruments=instruments,
        sink=sink,
        base_url=cfg.get("UPSTOX_FEED_BASE_URL") or cfg.get("UPSTOX_BASE_URL", "https://api.upstox.com"),
        mode=cfg.get("UPSTOX_FEED_MODE", "full"),
        stall_timeout=float(cfg.get("UPSTOX_FEED_STALL_SECONDS", 10.0)),
        backoff_initial=float(cfg.get("UPSTOX_FEED_BACKOFF_INITIAL_SECONDS", 0.5)),
        backoff_max=float(cfg.get("UPSTOX_FEED_BACKOFF_MAX_SECONDS", 30.0)),
        token_check_seconds=float(cfg.get("UPSTOX_FEED_TOKEN_CHECK_SECONDS", 5.0)),
        keys_per_request=int(cfg.get("UPSTOX_FEED_KEYS_PER_REQUEST", 500)),
        connect_timeout=float(cfg.get("UPSTOX_CONNECT_TIMEOUT_SECONDS", 5.0)),
        call_wrapper=broker_service.market_data_call_wrapper(app),
        expect_data=_session_open(app),
    )
    stream.start()
    return FeedRouter(stream, md.live_ticks)
