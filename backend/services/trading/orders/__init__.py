"""Order use cases, one seam per module.

- ``prepare``: an order body as a validated request (instrument, quote, static checks, digest);
- ``placement``: one order under the account lock (risk snapshot, decision, recorded row, broker), preview;
- ``baskets``: several legs all-or-none;
- ``manage``: read, modify, cancel;
- ``matching``: the tick-driven matching engine for resting paper orders;
- ``stops``: protective stop-loss / take-profit exits;
- ``expiry``: DAY orders at the session's close;
- ``settlement``: F&O positions at their contract's expiry (exercise, assignment, futures);
- ``brokers``: which broker works an account.
"""

from backend.services.trading.orders.baskets import MAX_BASKET_LEGS, place_basket
from backend.services.trading.orders.brokers import (
    live_broker_factory,
    resolve_broker,
    set_live_broker_factory,
)
from backend.services.trading.orders.expiry import expire_day_orders
from backend.services.trading.orders.manage import (
    cancel_all,
    cancel_order,
    get_order,
    list_orders,
    modify_order,
    order_trades,
)
from backend.services.trading.orders.matching import match_tick, on_tick, working_symbols
from backend.services.trading.orders.placement import coordinator, place_order, preview_order, snapshot
from backend.services.trading.orders.prepare import REQUEST_FIELDS, request_hash
from backend.services.trading.orders.settlement import settle_expiry
from backend.services.trading.orders.stops import check_stops_tick

__all__ = [
    "MAX_BASKET_LEGS",
    "REQUEST_FIELDS",
    "cancel_all",
    "cancel_order",
    "check_stops_tick",
    "coordinator",
    "expire_day_orders",
    "get_order",
    "list_orders",
    "live_broker_factory",
    "match_tick",
    "modify_order",
    "on_tick",
    "order_trades",
    "place_basket",
    "place_order",
    "preview_order",
    "request_hash",
    "resolve_broker",
    "set_live_broker_factory",
    "settle_expiry",
    "snapshot",
    "working_symbols",
]
