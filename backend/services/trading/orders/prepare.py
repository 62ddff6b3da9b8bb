"""An order body as a validated ``OrderRequest``: instrument, quote, static checks, idempotency digest."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from backend.domain.errors import (
    BrokerUnavailable,
    ValidationFailed,
)
from backend.domain.market.types import Quote
from backend.domain.orders.types import OrderRequest, OrderType, Product, Side, Validity
from backend.domain.orders.validation import validate_order, validate_trigger_against_ltp
from backend.services.trading.common import (
    to_instrument,
)

REQUEST_FIELDS = (
    "symbol",
    "side",
    "type",
    "product",
    "quantity",
    "validity",
    "price",
    "trigger_price",
    "tag",
    "strategy_id",
)


# --------------------------------------------------------------------------- helpers


def fields_error(message: str, errors: dict[str, str]) -> ValidationFailed:
    return ValidationFailed(message, {"fields": {k: [v] for k, v in errors.items()}})


def instrument_for(symbol: str):
    from backend.services import market_data

    ins = market_data.find_instrument(symbol)
    if ins is None:
        raise fields_error("Unknown symbol.", {"symbol": f"Unknown symbol: {symbol}."})
    return to_instrument(ins)


def quote_for(symbol: str) -> Quote:
    from backend.services import market_data

    got = market_data.quotes([symbol])
    if not got:
        raise BrokerUnavailable(f"No quote available for {symbol}.")
    return got[0]


def build_request(data: dict[str, Any], client_order_id: str | None) -> OrderRequest:
    return OrderRequest(
        symbol=data["symbol"].strip().upper(),
        side=Side(data["side"]),
        type=OrderType(data["type"]),
        product=Product(data.get("product") or "D"),
        quantity=int(data["quantity"]),
        validity=Validity(data.get("validity") or "DAY"),
        price=data.get("price"),
        trigger_price=data.get("trigger_price"),
        tag=data.get("tag"),
        client_order_id=client_order_id,
    )


def validate_request(req: OrderRequest, ins: Any, ltp: Decimal | None) -> None:
    try:
        validate_order(req, ins)
        if ltp is not None:
            validate_trigger_against_ltp(req, ltp)
    except ValidationFailed as exc:
        raise fields_error("Order validation failed.", {k: str(v) for k, v in exc.details.items()}) from None


def prepare(data: dict[str, Any], key: str | None) -> tuple[Any, OrderRequest]:
    """Instrument and request of an order body, statically validated (tick, lot, price fields)."""
    ins = instrument_for(data["symbol"])
    req = build_request(data, key)
    validate_request(req, ins, None)
    return ins, req


def request_hash(data: dict[str, Any], account_id: int) -> str:
    canon = {k: (None if data.get(k) is None else str(data.get(k))) for k in REQUEST_FIELDS}
    canon["symbol"] = (canon["symbol"] or "").upper()
    canon["account_id"] = str(account_id)
    return hashlib.sha256(json.dumps(canon, sort_keys=True).encode()).hexdigest()
