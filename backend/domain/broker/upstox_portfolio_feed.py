"""Upstox portfolio stream feed: order, position and holding updates pushed over a websocket.

Facts (Upstox API documentation, "Portfolio Stream Feed Authorize" and "Webhook" pages; the official
SDK upstox/upstox-python, ``upstox_client/feeder/portfolio_data_feeder.py`` and
``api/websocket_api.py``):

* ``GET /v2/feed/portfolio-stream-feed/authorize?update_types=order,position,holding`` (Bearer token)
  answers ``{"status": "success", "data": {"authorized_redirect_uri": "wss://..."}}``; the client then
  connects to that one-time URI. ``update_types`` values: ``order``, ``gtt_order``, ``position``,
  ``holding``; without it only order updates are sent.
* Messages are JSON text frames. An order update carries ``"update_type": "order"`` and the fields of
  an order-book row: ``order_id``, ``status``, ``quantity``, ``filled_quantity``, ``pending_quantity``,
  ``average_price``, ``price``, ``trigger_price``, ``product``, ``order_type``, ``transaction_type``,
  ``validity``, ``tag``, ``instrument_key`` (``instrument_token`` deprecated), ``trading_symbol``,
  ``status_message``, ``order_timestamp``, ``exchange_timestamp``, ``is_amo`` ...
* Updates cover orders placed anywhere (the Upstox app, web, the API): an update may name an order
  this platform never placed.

This module parses and routes messages; ``ws_supervisor`` keeps the socket alive; the service
(``backend/services/portfolio_feed.py``) applies updates to the local book.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from backend.domain.ws_supervisor import Backoff, SocketSupervisor

log = logging.getLogger(__name__)

AUTHORIZE_PATH = "/v2/feed/portfolio-stream-feed/authorize"
UPDATE_TYPES = ("order", "gtt_order", "position", "holding")
DEFAULT_UPDATE_TYPES = ("order", "position", "holding")


class MalformedMessage(ValueError):
    """A frame that is not a portfolio update we can read (not JSON, not an object, no order id)."""


@dataclass(frozen=True)
class PortfolioUpdate:
    kind: str  # order | position | holding | gtt_order | other
    payload: dict[str, Any]


def parse_update(raw: str | bytes) -> PortfolioUpdate:
    """One frame -> a ``PortfolioUpdate``; raises ``MalformedMessage`` for anything unreadable.

    An ``update_type`` Upstox adds later is ``other`` (counted, ignored), never an error."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
        body = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedMessage(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise MalformedMessage("not a JSON object")
    kind = body.get("update_type")
    if kind is None and "order_id" in body and "status" in body:
        kind = "order"  # the older shape, without update_type, was an order update
    if not isinstance(kind, str):
        raise MalformedMessage("update_type missing")
    if kind not in UPDATE_TYPES:
        return PortfolioUpdate("other", body)
    if kind == "order":
        oid = body.get("order_id")
        if not isinstance(oid, str | int) or isinstance(oid, bool) or not str(oid).strip():
            raise MalformedMessage("order update without order_id")
        if not isinstance(body.get("status"), str):
            raise MalformedMessage("order update without status")
        for name in ("quantity", "filled_quantity"):
            value = body.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise MalformedMessage(f"{name} is not an integer")
        value = body.get("average_price")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float | str)):
            raise MalformedMessage("average_price is not a number")
        if "instrument_token" not in body and body.get("instrument_key"):
            body = {**body, "instrument_token": body["instrument_key"]}
    return PortfolioUpdate(kind, body)


@dataclass(frozen=True)
class FeedSettings:
    update_types: tuple[str, ...] = DEFAULT_UPDATE_TYPES
    silence_timeout: float = 60.0
    ping_interval: float = 15.0
    credential_check_seconds: float = 5.0
    auth_retry_seconds: float = 60.0
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    connect_timeout: float = 10.0

    @classmethod
    def from_config(cls, cfg: Any) -> FeedSettings:
        types = cfg.get("UPSTOX_PORTFOLIO_UPDATE_TYPES") or ",".join(cls.update_types)
        if isinstance(types, str):
            types = [t.strip() for t in types.split(",") if t.strip()]
        return cls(
            update_types=tuple(types),
            silence_timeout=float(cfg.get("UPSTOX_PORTFOLIO_FEED_SILENCE_SECONDS", cls.silence_timeout)),
            ping_interval=float(cfg.get("UPSTOX_PORTFOLIO_FEED_PING_SECONDS", cls.ping_interval)),
            credential_check_seconds=float(
                cfg.get("UPSTOX_PORTFOLIO_FEED_TOKEN_CHECK_SECONDS", cls.credential_check_seconds)
            ),
            auth_retry_seconds=float(
                cfg.get("UPSTOX_PORTFOLIO_FEED_AUTH_RETRY_SECONDS", cls.auth_retry_seconds)
            ),
            backoff_initial=float(cfg.get("UPSTOX_PORTFOLIO_FEED_BACKOFF_INITIAL", cls.backoff_initial)),
            backoff_max=float(cfg.get("UPSTOX_PORTFOLIO_FEED_BACKOFF_MAX", cls.backoff_max)),
            connect_timeout=float(cfg.get("UPSTOX_CONNECT_TIMEOUT_SECONDS", cls.connect_timeout)),
        )


@dataclass
class PortfolioFeed:
    """One account's portfolio stream: a supervised socket whose frames become ``PortfolioUpdate``s.

    ``authorize`` returns the one-time socket URI (``UpstoxBroker.portfolio_feed_url``); ``credential``
    a fingerprint of the account's current token (a change means rollover or a fresh login);
    ``on_update`` applies one update (its exceptions are counted by the supervisor)."""

    name: str
    authorize: Callable[[], str]
    on_update: Callable[[PortfolioUpdate], None]
    credential: Callable[[], Hashable]
    is_auth_error: Callable[[BaseException], bool]
    settings: FeedSettings = field(default_factory=FeedSettings)
    connect: Callable[[str], Any] | None = None
    ignored: int = 0

    def __post_init__(self) -> None:
        s = self.settings
        self.supervisor = SocketSupervisor(
            self.name,
            self.authorize,
            self._handle,
            credential=self.credential,
            is_auth_error=self.is_auth_error,
            connect=self.connect,
            silence_timeout=s.silence_timeout,
            ping_interval=s.ping_interval,
            credential_check_seconds=s.credential_check_seconds,
            auth_retry_seconds=s.auth_retry_seconds,
            connect_timeout=s.connect_timeout,
            backoff=Backoff(initial=s.backoff_initial, maximum=s.backoff_max),
        )

    @property
    def stats(self) -> Any:
        return self.supervisor.stats

    def _handle(self, raw: str | bytes) -> None:
        try:
            update = parse_update(raw)
        except MalformedMessage as exc:
            self.supervisor.stats.malformed += 1
            log.warning("malformed portfolio feed message", extra={"feed": self.name, "error": str(exc)})
            return
        if update.kind in ("other", "gtt_order"):
            self.ignored += 1  # GTT rules and future update types: nothing local to update
            return
        self.on_update(update)

    def start(self) -> None:
        self.supervisor.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.supervisor.stop(timeout)
