"""Which broker works an account's orders: the paper broker, or the live one the broker service registers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, current_app

from backend.domain.broker.base import Broker
from backend.domain.errors import BrokerUnavailable
from backend.domain.market.types import Quote
from backend.models.trading import TradingAccount
from backend.services.trading.common import Events
from backend.services.trading.paper_broker import PaperBroker

LiveBrokerFactory = Callable[[TradingAccount], Broker]
_EXTENSION = "trading.live_broker_factory"


def set_live_broker_factory(app: Flask, factory: LiveBrokerFactory | None) -> LiveBrokerFactory | None:
    """Register how live accounts get their broker client (the broker service does, in its init_app).

    Kept per app in ``app.extensions`` rather than in a module global, so two apps in one process
    (tests, workers) never share it. Returns the previous factory so a caller can restore it."""
    previous = app.extensions.get(_EXTENSION)
    app.extensions[_EXTENSION] = factory
    return previous


def live_broker_factory() -> LiveBrokerFactory | None:
    return current_app.extensions.get(_EXTENSION)


def resolve_broker(
    acct: TradingAccount, quotes: dict[str, Quote] | None = None, events: Events | None = None
) -> Any:
    """Paper accounts always get the PaperBroker: the live factory is never consulted for them."""
    if acct.mode == "paper":
        return PaperBroker(quotes, events)
    if acct.mode != "live":
        raise BrokerUnavailable(f"Unknown account mode {acct.mode!r}.")
    factory = live_broker_factory()
    if factory is None:
        raise BrokerUnavailable("No live broker is connected for this account.")
    return factory(acct)
