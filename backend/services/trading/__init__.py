"""Paper-trading services: accounts, orders (paper broker), portfolio and risk.

``init_app`` subscribes the paper engine to the live tick bus so resting LIMIT/SL/SL-M orders and
position stops are worked on every tick (in the one process that holds the feed leadership).
"""

from __future__ import annotations

import logging

from flask import Flask

log = logging.getLogger(__name__)
_subscription: list = []


def init_app(app: Flask) -> None:
    if not app.config.get("PAPER_TICK_MATCHING", True):
        return
    from backend.realtime.bus import tick_bus
    from backend.services.trading import orders

    def symbols() -> set[str]:
        with app.app_context():
            return orders.working_symbols()

    # one subscription per process: a second app (tests, CLI) replaces the first
    for sub in _subscription:
        tick_bus.unsubscribe(sub)
    _subscription.clear()
    _subscription.append(tick_bus.subscribe(orders.on_tick, symbols=symbols, name="paper-trading"))
