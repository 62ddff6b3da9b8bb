"""Orders: place (idempotent, risk-checked), preview, list, modify, cancel, cancel-all, trades."""

from flask import current_app, g, request
from flask_restx import Namespace, Resource

from backend.api.common import conflicts, decode_cursor, page_limit, responds, use_schema
from backend.api.orders.schemas import (
    CancelAllQuerySchema,
    CancelAllResultSchema,
    OrderCreateSchema,
    OrderListQuerySchema,
    OrderModifySchema,
    OrderPreviewSchema,
    OrderSchema,
    PreviewResultSchema,
    TradeSchema,
)
from backend.api.security import current_user, require_scope
from backend.errors import ApiError
from backend.extensions import limiter
from backend.services.trading import orders

ns = Namespace("orders", description="Orders on paper (and linked live) accounts", validate=False)


def _orders_limit() -> str:
    return current_app.config["RATELIMIT_ORDERS"]


def _user_key() -> str:
    """Per-user order rate-limit key (falls back to the address before authentication)."""
    user = g.get("current_user")
    return f"orders-user:{user.id}" if user is not None else f"orders-ip:{request.remote_addr}"


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 64 or not all(c.isalnum() or c in "._:-" for c in key):
        raise ApiError(
            422,
            "VALIDATION_ERROR",
            "Invalid Idempotency-Key header.",
            {"fields": {"Idempotency-Key": ["1-64 characters of A-Z a-z 0-9 . _ : -"]}},
        )
    return key


@ns.route("")
class Orders(Resource):
    decorators = [limiter.limit(_orders_limit, key_func=_user_key, methods=["POST"])]

    @require_scope("trade")
    @use_schema(OrderCreateSchema)
    @responds(OrderSchema, 201, "Created (or the original order of an idempotent retry)")
    @conflicts("IDEMPOTENCY_CONFLICT")
    def post(self, data):
        """Place an order. Risk rejections answer 422 RISK_REJECTED listing every failed check."""
        return orders.place_order(current_user(), data, _idempotency_key())

    @require_scope("read")
    @use_schema(OrderListQuerySchema, location="query", arg="query")
    @responds(OrderSchema, paged=True)
    def get(self, query):
        """List orders (filters: status, symbol, from/to, account_id)."""
        return orders.list_orders(
            current_user(), query, page_limit(query["limit"]), decode_cursor(query["cursor"])
        )

    @require_scope("trade")
    @use_schema(CancelAllQuerySchema, location="query", arg="query")
    @responds(CancelAllResultSchema)
    @conflicts("ORDER_NOT_ACKNOWLEDGED")
    def delete(self, query):
        """Cancel every working order (optionally of one symbol / account)."""
        rows = orders.cancel_all(current_user(), query["account_id"], query["symbol"])
        return {"cancelled": len(rows), "orders": rows}


@ns.route("/preview")
class Preview(Resource):
    @require_scope("read")
    @use_schema(OrderPreviewSchema)
    @responds(PreviewResultSchema)
    def post(self, data):
        """Run the risk checks and the charge estimate; changes nothing."""
        return orders.preview_order(current_user(), data)


@ns.route("/<int:order_id>")
class OrderItem(Resource):
    @require_scope("read")
    @responds(OrderSchema)
    def get(self, order_id):
        """One order."""
        return orders.get_order(current_user(), order_id)

    @require_scope("trade")
    @use_schema(OrderModifySchema)
    @responds(OrderSchema)
    @conflicts("ORDER_NOT_MODIFIABLE", "ORDER_NOT_ACKNOWLEDGED", "ILLEGAL_TRANSITION")
    def patch(self, order_id, data):
        """Modify a working order's quantity, price or trigger (risk is re-checked)."""
        return orders.modify_order(current_user(), order_id, data)

    @require_scope("trade")
    @responds(OrderSchema)
    @conflicts("ORDER_NOT_CANCELLABLE", "ORDER_NOT_ACKNOWLEDGED", "ILLEGAL_TRANSITION")
    def delete(self, order_id):
        """Cancel a working order."""
        return orders.cancel_order(current_user(), order_id)


@ns.route("/<int:order_id>/trades")
class OrderTrades(Resource):
    @require_scope("read")
    @responds(TradeSchema, many=True)
    def get(self, order_id):
        """Fills of one order."""
        return orders.order_trades(current_user(), order_id)
