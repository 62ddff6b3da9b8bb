"""Order value types: enums, the order request and the instrument facts validation needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    SL = "SL"  # stop-loss limit: triggers, then rests as a LIMIT at ``price``
    SL_M = "SL-M"  # stop-loss market: triggers, then executes as MARKET


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class Product(StrEnum):
    I = "I"  # noqa: E741 - broker code for intraday
    D = "D"  # delivery
    # a product the broker reports that we do not trade (Upstox MTF, CO, OCO, a new code): read from
    # the broker's book only, its raw code kept beside it; never accepted on an order request
    OTHER = "other"


class Validity(StrEnum):
    DAY = "DAY"
    IOC = "IOC"


class OrderStatus(StrEnum):
    PENDING = "pending"
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    TRIGGER_PENDING = "trigger_pending"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    # Live orders only: recorded and committed, the broker call in flight (``submitting``), or the call
    # ended without an answer (timeout, connection reset, 5xx) so the broker may or may not hold it
    # (``unknown``). Neither is ever rolled back; a look-up by tag in the broker's book settles them.
    SUBMITTING = "submitting"
    UNKNOWN = "unknown"
    # a broker status text we do not know yet (raw text kept on the order): never raises
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Instrument:
    """The facts about a tradable instrument that order validation and risk need."""

    symbol: str
    tick_size: Decimal = Decimal("0.05")
    lot_size: int = 1
    segment: str = "EQ"  # risk limits' segment: EQ (cash) or FO (options and futures)
    exchange: str = "NSE"
    freeze_quantity: int | None = None  # the exchange's largest quantity per order (F&O)
    # derivatives: what charges and margin need (None for cash equity)
    instrument_type: str | None = None  # EQ, FUT, CE, PE
    underlying: str | None = None
    strike: Decimal | None = None
    expiry: date | None = None

    @property
    def market_segment(self) -> str:
        """The calendar's segment name, e.g. ``NSE_EQ``, ``NSE_FO``."""
        return f"{self.exchange}_{self.segment}"

    @property
    def charge_segment(self) -> str:
        """The charge schedule to use: futures have their own (``FUT``), options use ``FO``."""
        return "FUT" if self.segment == "FO" and self.instrument_type == "FUT" else self.segment

    @property
    def is_option(self) -> bool:
        return self.instrument_type in ("CE", "PE")

    @property
    def is_derivative(self) -> bool:
        return self.instrument_type in ("FUT", "CE", "PE")


@dataclass(frozen=True, slots=True)
class OrderRequest:
    symbol: str
    side: Side
    type: OrderType
    product: Product
    quantity: int
    validity: Validity = Validity.DAY
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    tag: str | None = None
    client_order_id: str | None = None
    amo: bool = False  # after-market order: queued until the segment's next open

    @property
    def is_stop(self) -> bool:
        return self.type in (OrderType.SL, OrderType.SL_M)
