"""Orders: value types, validation, lifecycle state machine and the paper fill model."""

from backend.domain.orders.state import TERMINAL_STATES, TRANSITIONS, can_transition, is_terminal, transition
from backend.domain.orders.types import (
    Instrument,
    OrderRequest,
    OrderStatus,
    OrderType,
    Product,
    Side,
    Validity,
)
from backend.domain.orders.validation import validate_order, validate_trigger_against_ltp

__all__ = [
    "TERMINAL_STATES",
    "TRANSITIONS",
    "Instrument",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "Product",
    "Side",
    "Validity",
    "can_transition",
    "is_terminal",
    "transition",
    "validate_order",
    "validate_trigger_against_ltp",
]
