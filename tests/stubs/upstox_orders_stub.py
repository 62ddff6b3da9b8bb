"""Upstox order, portfolio and OAuth endpoints for the stub (registered by ``create_stub_app``).

State lives in ``OrderBook`` (``book_of(state)``). Shapes follow Upstox's documentation:

* POST /v3/order/place -> ``{"status":"success","data":{"order_ids":[...]},"metadata":{"latency":..}}``
* PUT /v3/order/modify, DELETE /v3/order/cancel?order_id= -> ``data.order_id``
* GET /v2/order/retrieve-all, /v2/order/details?order_id=, /v2/order/trades/get-trades-for-day
* GET /v2/portfolio/short-term-positions, /v2/portfolio/long-term-holdings,
  /v2/user/get-funds-and-margin
* POST /v2/login/authorization/token (form-encoded; a code is single use, success or not)
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, request

from tests.stubs.upstox_stub import StubState, error_response, ok

ORDER_NOT_FOUND = (400, "UDAPI100010", "Order not found")
INVALID_CODE = (401, "UDAPI100057", "Invalid Auth code")
INVALID_CREDENTIALS = (
    401,
    "UDAPI100069",
    "Check your 'client_id' and 'redirect_uri'; one or both are incorrect.",
)
INSUFFICIENT_FUNDS = (400, "UDAPI1053", "Insufficient funds")


@dataclass
class OrderBook:
    orders: dict[str, dict] = field(default_factory=dict)
    trades: list[dict] = field(default_factory=list)
    positions: list[dict] = field(default_factory=list)
    holdings: list[dict] = field(default_factory=list)
    funds: dict = field(
        default_factory=lambda: {
            "used_margin": 1500.5,
            "payin_amount": 0,
            "span_margin": 0,
            "adhoc_margin": 0,
            "notional_cash": 0,
            "available_margin": 98500.25,
            "exposure_margin": 0,
        }
    )
    # OAuth app registered at the stub
    client_id: str = "stub-client"
    client_secret: str = "stub-secret"
    redirect_uri: str = "http://localhost/api/v1/broker/upstox/callback"
    codes: dict[str, str] = field(default_factory=dict)  # code -> access token it yields
    used_codes: set[str] = field(default_factory=set)
    token_requests: list[dict] = field(default_factory=list)
    # next placements to accept, then hold the response until ``release`` is set (client timeout)
    hang_next_place: int = 0
    # placement numbers (1 = the first this stub receives) accepted, then answered too late
    hang_at: set[int] = field(default_factory=set)
    placements: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    initial_status: str = "open"
    # next placements lost on the way (never accepted), answered only after ``release`` (client timeout)
    drop_next_place: int = 0
    # accepted orders appear in the order book only this many seconds after placement
    book_delay: float = 0.0
    visible_at: dict[str, float] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(250101000000001))

    def issue_code(self, code: str, token: str) -> None:
        self.codes[code] = token

    def add_order(self, **fields: Any) -> dict:
        oid = str(next(self._ids))
        row = {
            "exchange": "NSE",
            "product": "D",
            "price": 0.0,
            "quantity": 1,
            "status": self.initial_status,
            "guid": None,
            "tag": None,
            "instrument_token": "NSE_EQ|INE002A01018",
            "placed_by": "******",
            "trading_symbol": "RELIANCE-EQ",
            "tradingsymbol": "RELIANCE-EQ",
            "order_type": "MARKET",
            "validity": "DAY",
            "trigger_price": 0.0,
            "disclosed_quantity": 0,
            "transaction_type": "BUY",
            "average_price": 0.0,
            "filled_quantity": 0,
            "pending_quantity": 1,
            "status_message": None,
            "status_message_raw": None,
            "exchange_order_id": f"13000000{oid[-8:]}",
            "parent_order_id": None,
            "order_id": oid,
            "variety": "SIMPLE",
            "order_timestamp": "2025-11-20 10:15:00",
            "exchange_timestamp": "2025-11-20 10:15:00",
            "is_amo": False,
            "order_request_id": "1",
            "order_ref_id": "GTT-1",
        }
        row.update(fields)
        row["pending_quantity"] = row["quantity"] - row["filled_quantity"]
        self.orders[oid] = row
        return row

    def set_status(
        self, order_id: str, status: str, filled: int | None = None, avg: float | None = None
    ) -> None:
        row = self.orders[order_id]
        row["status"] = status
        if filled is not None:
            row["filled_quantity"] = filled
            row["pending_quantity"] = row["quantity"] - filled
        if avg is not None:
            row["average_price"] = avg


def book_of(state: StubState) -> OrderBook:
    book = getattr(state, "order_book", None)
    if book is None:
        book = OrderBook()
        state.order_book = book  # type: ignore[attr-defined]
    return book


def _json() -> dict:
    return request.get_json(silent=True) or {}


def orders_blueprint(state: StubState) -> Blueprint:
    bp = Blueprint("upstox_orders", __name__)
    book = book_of(state)

    @bp.post("/v3/order/place")
    def place():
        if (err := state.check_auth()) is not None:
            return err
        body = _json()
        missing = [
            f
            for f in (
                "quantity",
                "product",
                "validity",
                "price",
                "instrument_token",
                "order_type",
                "transaction_type",
            )
            if f not in body
        ]
        if missing:
            return error_response(400, "UDAPI1026", f"{missing[0]} is required", prop=missing[0])
        if body["quantity"] > 100_000:
            return error_response(*INSUFFICIENT_FUNDS)
        if book.drop_next_place > 0:
            book.drop_next_place -= 1
            book.release.wait(5)  # the request never reached the exchange; the client has given up
            return error_response(503, "UDAPI100500", "Something went wrong... please contact us")
        key = body["instrument_token"]
        ins = state.instruments.get(key)
        sym = ins.symbol if ins else key.split("|")[-1]
        row = book.add_order(
            quantity=body["quantity"],
            product=body["product"],
            validity=body["validity"],
            price=float(body["price"]),
            trigger_price=float(body.get("trigger_price") or 0),
            order_type=body["order_type"],
            transaction_type=body["transaction_type"],
            instrument_token=key,
            trading_symbol=f"{sym}-EQ",
            tradingsymbol=f"{sym}-EQ",
            tag=body.get("tag"),
            market_protection=body.get("market_protection"),
            is_amo=bool(body.get("is_amo")),
        )
        if book.book_delay:
            book.visible_at[row["order_id"]] = time.monotonic() + book.book_delay
        book.placements += 1
        if book.hang_next_place > 0 or book.placements in book.hang_at:
            book.hang_next_place = max(0, book.hang_next_place - 1)
            book.release.wait(5)  # accepted, but the answer comes too late for the client
        return {"status": "success", "data": {"order_ids": [row["order_id"]]}, "metadata": {"latency": 21}}

    @bp.put("/v3/order/modify")
    def modify():
        if (err := state.check_auth()) is not None:
            return err
        body = _json()
        row = book.orders.get(str(body.get("order_id")))
        if row is None:
            return error_response(*ORDER_NOT_FOUND, prop="order_id")
        if row["status"] in ("complete", "cancelled", "rejected"):
            return error_response(400, "UDAPI100040", "Order is already " + row["status"])
        for f in ("quantity", "validity", "price", "order_type", "trigger_price"):
            if f in body:
                row[f] = body[f]
        row["pending_quantity"] = row["quantity"] - row["filled_quantity"]
        row["status"] = "modified"
        return {"status": "success", "data": {"order_id": row["order_id"]}, "metadata": {"latency": 15}}

    @bp.delete("/v3/order/cancel")
    def cancel():
        if (err := state.check_auth()) is not None:
            return err
        row = book.orders.get(request.args.get("order_id", ""))
        if row is None:
            return error_response(*ORDER_NOT_FOUND, prop="order_id")
        if row["status"] in ("complete", "cancelled", "rejected"):
            return error_response(400, "UDAPI100040", "Order is already " + row["status"])
        row["status"] = "cancelled"
        return {"status": "success", "data": {"order_id": row["order_id"]}, "metadata": {"latency": 12}}

    @bp.get("/v2/order/retrieve-all")
    def order_book():
        if (err := state.check_auth()) is not None:
            return err
        now = time.monotonic()
        return ok([o for o in book.orders.values() if book.visible_at.get(o["order_id"], 0) <= now])

    @bp.get("/v2/order/details")
    def details():
        if (err := state.check_auth()) is not None:
            return err
        row = book.orders.get(request.args.get("order_id", ""))
        if row is None:
            return error_response(*ORDER_NOT_FOUND, prop="order_id")
        return ok(row)

    @bp.get("/v2/order/trades/get-trades-for-day")
    def trades():
        if (err := state.check_auth()) is not None:
            return err
        return ok(book.trades)

    @bp.get("/v2/portfolio/short-term-positions")
    def positions():
        if (err := state.check_auth()) is not None:
            return err
        return ok(book.positions)

    @bp.get("/v2/portfolio/long-term-holdings")
    def holdings():
        if (err := state.check_auth()) is not None:
            return err
        return ok(book.holdings)

    @bp.get("/v2/user/get-funds-and-margin")
    def funds():
        if (err := state.check_auth()) is not None:
            return err
        return ok({"equity": book.funds, "commodity": dict.fromkeys(book.funds, 0)})

    @bp.post("/v2/login/authorization/token")
    def token():
        form = request.form.to_dict()
        book.token_requests.append({"content_type": request.content_type, **form})
        if request.mimetype != "application/x-www-form-urlencoded":
            return error_response(400, "UDAPI1000", "Content-Type must be application/x-www-form-urlencoded")
        if (
            form.get("client_id") != book.client_id
            or form.get("client_secret") != book.client_secret
            or form.get("redirect_uri") != book.redirect_uri
            or form.get("grant_type") != "authorization_code"
        ):
            return error_response(*INVALID_CREDENTIALS)
        code = form.get("code", "")
        if code not in book.codes or code in book.used_codes:
            book.used_codes.add(code)
            return error_response(*INVALID_CODE, prop="code")
        book.used_codes.add(code)  # single use, whatever happens next
        access = book.codes[code]
        state.access_token = access
        return {
            "email": "trader@example.com",
            "exchanges": ["NSE", "NFO", "BSE"],
            "products": ["D", "CO", "I"],
            "broker": "UPSTOX",
            "user_id": "AB1234",
            "user_name": "Stub Trader",
            "order_types": ["MARKET", "LIMIT", "SL", "SL-M"],
            "user_type": "individual",
            "poa": False,
            "is_active": True,
            "access_token": access,
            "extended_token": None,
        }

    return bp
