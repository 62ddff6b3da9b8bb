"""An order body as a validated ``OrderRequest``: instrument, quote, static checks, idempotency digest."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC
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
# in the digest only when true, so digests of orders recorded before these flags are unchanged
FLAG_FIELDS = ("amo", "slice")
# Upstox place order v3: "When slicing is applicable, a maximum of 25 orders can be placed in a
# single request" (https://upstox.com/developer/api-documentation/v3/place-order)
MAX_SLICES = 25


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
        amo=bool(data.get("amo")),
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
    slice_sizes(ins, req, bool(data.get("slice")))
    return ins, req


def slice_sizes(ins: Any, req: OrderRequest, slice_: bool) -> list[int]:
    """The quantities the order is placed as: one, or slices of at most the freeze quantity.

    NSE refuses an F&O order above the contract's quantity freeze limit; Upstox's ``slice: true``
    splits it into orders of at most that size (``MAX_SLICES`` at most). Each slice is a whole
    number of lots, so with NIFTY's 1800 and a lot of 65 a slice holds 27 lots (1755)."""
    freeze = getattr(ins, "freeze_quantity", None)
    if not freeze or req.quantity <= freeze:
        return [req.quantity]
    if not slice_:
        raise fields_error(
            "Order above the freeze quantity.",
            {"quantity": f"above the freeze quantity {freeze}; send slice: true to split"},
        )
    lot = max(int(getattr(ins, "lot_size", 1) or 1), 1)
    per = freeze - freeze % lot
    if per <= 0:
        raise fields_error(
            "Order above the freeze quantity.", {"quantity": f"freeze quantity {freeze} is below a lot"}
        )
    n = -(-req.quantity // per)
    if n > MAX_SLICES:
        raise fields_error(
            "Too many slices.",
            {"quantity": f"{req.quantity} needs {n} slices of at most {per}; at most {MAX_SLICES} per order"},
        )
    return [per] * (req.quantity // per) + ([req.quantity % per] if req.quantity % per else [])


def session_gate(mode: str, ins: Any, req: OrderRequest) -> bool:
    """Whether the order is queued for the next open as an AMO (True) or worked now (False).

    Outside the instrument's segment session a MARKET or SL-M order is refused (it would fill at
    whatever price the open brings); a LIMIT or SL order is accepted as an AMO when it asks for
    ``amo: true``. Inside the session ``amo`` is refused. ``MARKET_CLOCK=always_open`` keeps a paper
    account's simulated session open at every hour; it never applies to a live account. A contract
    past its expiry's F&O close never trades, whatever the clock: it is settled (``orders.settlement``)."""
    from backend.services import market_calendar

    expiry = getattr(ins, "expiry", None)
    if expiry is not None and market_calendar.now() >= market_calendar.calendar().session_close(
        expiry, "NSE_FO"
    ):
        raise fields_error(
            "The contract has expired.",
            {"symbol": f"{req.symbol} expired on {expiry.isoformat()}; it is settled at expiry, not traded"},
        )
    if market_calendar.always_open(mode):
        if req.amo:
            raise fields_error(
                "The session is open.",
                {
                    "amo": "the simulated market is always open (MARKET_CLOCK=always_open);"
                    " send the order without amo"
                },
            )
        return False
    segment = getattr(ins, "market_segment", "NSE_EQ")
    status = market_calendar.calendar().market_status(market_calendar.now(), segment)
    if status.is_open:
        if req.amo:
            raise fields_error(
                "The session is open.",
                {
                    "amo": f"the {segment} session is open until {status.next_close:%H:%M} IST;"
                    " send the order without amo"
                },
            )
        return False
    when = f"{status.next_open:%a %d %b %Y %H:%M} IST"
    extra = {
        "next_open": status.next_open.astimezone(UTC).isoformat(),
        "segment": segment,
        "session": status.reason,
    }
    if req.type in (OrderType.MARKET, OrderType.SL_M):
        raise ValidationFailed(
            f"{req.type} orders are not accepted outside the {segment} session.",
            {
                "fields": {
                    "type": [
                        f"{req.type} orders are not accepted outside the {segment} session ({status.reason});"
                        f" it opens {when}; send a LIMIT or SL order with amo: true to queue it for the open"
                    ]
                },
                **extra,
            },
        )
    if not req.amo:
        raise ValidationFailed(
            f"The {segment} session is closed.",
            {
                "fields": {
                    "amo": [
                        f"the {segment} session is closed ({status.reason}); it opens {when};"
                        " send amo: true to queue this order for the open"
                    ]
                },
                **extra,
            },
        )
    if req.validity is Validity.IOC:
        raise fields_error(
            "An after-market order is a DAY order.",
            {"validity": "an after-market order is DAY: an IOC order would be cancelled at the open"},
        )
    return True


def request_hash(data: dict[str, Any], account_id: int) -> str:
    canon = {k: (None if data.get(k) is None else str(data.get(k))) for k in REQUEST_FIELDS}
    canon["symbol"] = (canon["symbol"] or "").upper()
    canon["account_id"] = str(account_id)
    canon.update({k: "True" for k in FLAG_FIELDS if data.get(k)})
    return hashlib.sha256(json.dumps(canon, sort_keys=True).encode()).hexdigest()
