"""Broker port: what the order service needs from any execution venue (paper engine, Upstox, ...).

Adapters translate their API into these value types and raise ``backend.domain.errors`` classes
(BrokerUnavailable, BrokerTokenExpired, RateLimited, NotFound, ValidationFailed); never HTTP errors.
``account`` is the platform's account identifier; adapters map it to their own credentials.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from backend.domain.orders.types import OrderRequest, OrderStatus, OrderType, Product, Side, Validity


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    order_id: str  # the venue's id
    symbol: str
    side: Side
    type: OrderType
    product: Product
    validity: Validity
    quantity: int
    status: OrderStatus
    filled_quantity: int = 0
    average_price: Decimal | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    tag: str | None = None
    client_order_id: str | None = None
    status_message: str = ""
    placed_at: datetime | None = None
    updated_at: datetime | None = None
    # the broker's own texts, kept when they map to ``other`` (MTF, CO, a status Upstox adds later)
    raw_status: str = ""
    raw_product: str = ""

    @property
    def pending_quantity(self) -> int:
        return self.quantity - self.filled_quantity


@dataclass(frozen=True, slots=True)
class BrokerPosition:
    symbol: str
    product: Product
    quantity: int  # signed net quantity
    average_price: Decimal
    realised_pnl: Decimal = Decimal(0)
    unrealised_pnl: Decimal = Decimal(0)
    ltp: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Holding:
    symbol: str
    quantity: int
    average_price: Decimal
    ltp: Decimal | None = None
    product: Product = Product.D  # long-term holdings are delivery (Upstox answers "D")


@dataclass(frozen=True, slots=True)
class Funds:
    available_cash: Decimal
    used_margin: Decimal = Decimal(0)
    total: Decimal = Decimal(0)
    extra: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True, slots=True)
class OrderModification:
    """Fields to change; None leaves a field as is."""

    quantity: int | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    type: OrderType | None = None
    validity: Validity | None = None


@runtime_checkable
class Broker(Protocol):
    name: str

    def place_order(self, account: str, order: OrderRequest) -> BrokerOrder: ...

    def modify_order(self, account: str, order_id: str, changes: OrderModification) -> BrokerOrder: ...

    def cancel_order(self, account: str, order_id: str) -> BrokerOrder: ...

    def get_order(self, account: str, order_id: str) -> BrokerOrder: ...

    def list_orders(self, account: str) -> list[BrokerOrder]: ...

    def positions(self, account: str) -> list[BrokerPosition]: ...

    def holdings(self, account: str) -> list[Holding]: ...

    def funds(self, account: str) -> Funds: ...
