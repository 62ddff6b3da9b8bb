"""Static validation of an order request against its instrument (tick size, lot size, price fields)."""

from __future__ import annotations

from decimal import Decimal

from backend.domain.errors import ValidationFailed
from backend.domain.orders.types import Instrument, OrderRequest, OrderType, Side

_NEEDS_PRICE = {OrderType.LIMIT, OrderType.SL}
_NEEDS_TRIGGER = {OrderType.SL, OrderType.SL_M}


def is_on_tick(value: Decimal, tick_size: Decimal) -> bool:
    return tick_size > 0 and value % tick_size == 0


def validate_order(req: OrderRequest, instrument: Instrument) -> None:
    """Raise ValidationFailed listing every broken rule, keyed by field name."""
    errors: dict[str, str] = {}
    if req.symbol != instrument.symbol:
        errors["symbol"] = f"order symbol {req.symbol!r} does not match instrument {instrument.symbol!r}"
    if isinstance(req.quantity, bool) or not isinstance(req.quantity, int):
        errors["quantity"] = "quantity must be an integer"
    elif req.quantity <= 0:
        errors["quantity"] = "quantity must be positive"
    elif req.quantity % instrument.lot_size != 0:
        errors["quantity"] = f"quantity must be a multiple of lot size {instrument.lot_size}"

    for field, value, needed in (
        ("price", req.price, req.type in _NEEDS_PRICE),
        ("trigger_price", req.trigger_price, req.type in _NEEDS_TRIGGER),
    ):
        if needed and value is None:
            errors[field] = f"{field} is required for {req.type} orders"
        elif not needed and value is not None:
            errors[field] = f"{field} is not allowed for {req.type} orders"
        elif value is not None:
            if not isinstance(value, Decimal) or not value.is_finite():
                errors[field] = f"{field} must be a finite Decimal"
            elif value <= 0:
                errors[field] = f"{field} must be positive"
            elif not is_on_tick(value, instrument.tick_size):
                errors[field] = f"{field} {value} is not a multiple of tick size {instrument.tick_size}"

    # A stop-limit BUY triggers on a rise, so its limit must be at or above the trigger
    # (and the reverse for SELL); otherwise it could never fill once triggered.
    if req.type is OrderType.SL and "price" not in errors and "trigger_price" not in errors:
        assert req.price is not None and req.trigger_price is not None
        if req.side is Side.BUY and req.price < req.trigger_price:
            errors["trigger_price"] = "for a BUY stop-loss the trigger must be at or below the limit price"
        if req.side is Side.SELL and req.price > req.trigger_price:
            errors["trigger_price"] = "for a SELL stop-loss the trigger must be at or above the limit price"
    if errors:
        raise ValidationFailed("order validation failed", details=errors)


def validate_trigger_against_ltp(req: OrderRequest, ltp: Decimal) -> None:
    """A stop order whose trigger is already crossed would fire immediately; reject it like brokers do."""
    if not req.is_stop or req.trigger_price is None:
        return
    if req.side is Side.BUY and req.trigger_price <= ltp:
        raise ValidationFailed(
            "trigger already crossed",
            details={"trigger_price": f"BUY stop trigger {req.trigger_price} must be above ltp {ltp}"},
        )
    if req.side is Side.SELL and req.trigger_price >= ltp:
        raise ValidationFailed(
            "trigger already crossed",
            details={"trigger_price": f"SELL stop trigger {req.trigger_price} must be below ltp {ltp}"},
        )
