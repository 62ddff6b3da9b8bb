"""Marshmallow schemas for the orders namespace."""

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from backend.api.common import CommaList, ListQuerySchema

SIDES = ["BUY", "SELL"]
TYPES = ["MARKET", "LIMIT", "SL", "SL-M"]
PRODUCTS = ["I", "D"]
VALIDITIES = ["DAY", "IOC"]
STATUSES = [
    "pending",
    "open",
    "trigger_pending",
    "partially_filled",
    "filled",
    "cancelled",
    "rejected",
    "expired",
    "submitting",  # live: recorded, the broker call in flight
    "unknown",  # live: the broker call's outcome is being looked up (docs/brokers.md)
    "other",  # live: a broker status text we do not know yet (raw text in broker_status)
]
_PRICE = {"as_string": True, "allow_nan": False, "validate": validate.Range(min=0, min_inclusive=False)}


class OrderCreateSchema(Schema):
    swagger_example = {"symbol": "SBIN", "side": "BUY", "type": "MARKET", "product": "D", "quantity": 1}
    account_id = fields.Integer(load_default=None, validate=validate.Range(min=1))
    symbol = fields.String(required=True, validate=validate.Length(min=1, max=64))
    side = fields.String(required=True, validate=validate.OneOf(SIDES))
    type = fields.String(required=True, validate=validate.OneOf(TYPES))
    product = fields.String(load_default="D", validate=validate.OneOf(PRODUCTS))
    validity = fields.String(load_default="DAY", validate=validate.OneOf(VALIDITIES))
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=10_000_000))
    price = fields.Decimal(load_default=None, allow_none=True, **_PRICE)
    trigger_price = fields.Decimal(load_default=None, allow_none=True, **_PRICE)
    tag = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))
    strategy_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))
    client_order_id = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(r"^[A-Za-z0-9._:-]{1,64}$"),
        metadata={"description": "Idempotency key, unique per account (or send Idempotency-Key)"},
    )
    amo = fields.Boolean(
        load_default=False,
        metadata={
            "description": "After-market order (Upstox is_amo): a LIMIT or SL DAY order placed outside the "
            "session, queued until the segment's next open. Refused while the session is open."
        },
    )
    slice = fields.Boolean(
        load_default=False,
        metadata={
            "description": "Split an order above the instrument's freeze quantity into orders of at most "
            "that quantity (whole lots; at most 25), linked by parent_id to the first one"
        },
    )

    @validates_schema
    def _price_rules(self, data, **kwargs):
        errors = {}
        kind = data.get("type")
        if kind in ("LIMIT", "SL") and data.get("price") is None:
            errors["price"] = [f"Required for {kind} orders."]
        if kind in ("MARKET", "SL-M") and data.get("price") is not None:
            errors["price"] = [f"Not allowed for {kind} orders."]
        if kind in ("SL", "SL-M") and data.get("trigger_price") is None:
            errors["trigger_price"] = [f"Required for {kind} orders."]
        if kind in ("MARKET", "LIMIT") and data.get("trigger_price") is not None:
            errors["trigger_price"] = [f"Not allowed for {kind} orders."]
        if errors:
            raise ValidationError(errors)


class OrderPreviewSchema(OrderCreateSchema):
    pass


class OrderModifySchema(Schema):
    swagger_example = {"quantity": 2}
    quantity = fields.Integer(strict=True, validate=validate.Range(min=1, max=10_000_000))
    price = fields.Decimal(**_PRICE)
    trigger_price = fields.Decimal(**_PRICE)

    @validates_schema
    def _not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError({"_schema": ["Give at least one of quantity, price, trigger_price."]})


class OrderListQuerySchema(ListQuerySchema):
    status = CommaList(fields.String(validate=validate.OneOf(STATUSES)), load_default=None)
    symbol = fields.String(load_default=None, validate=validate.Length(max=64))
    account_id = fields.Integer(load_default=None)
    from_ = fields.AwareDateTime(data_key="from", load_default=None, default_timezone=None)
    to = fields.AwareDateTime(load_default=None, default_timezone=None)


class CancelAllQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    account_id = fields.Integer(load_default=None)
    symbol = fields.String(load_default=None, validate=validate.Length(max=64))


class CheckSchema(Schema):
    name = fields.String()
    reason = fields.String()
    limit = fields.String(allow_none=True)
    actual = fields.String(allow_none=True)


class OrderSliceSchema(Schema):
    id = fields.Integer()
    client_order_id = fields.String(allow_none=True)
    parent_id = fields.Integer(allow_none=True)
    quantity = fields.Integer()
    filled_quantity = fields.Integer()
    average_price = fields.Decimal(as_string=True, allow_none=True)
    status = fields.String()
    amo = fields.Boolean()


class OrderSchema(Schema):
    id = fields.Integer()
    account_id = fields.Integer()
    client_order_id = fields.String(allow_none=True)
    symbol = fields.String()
    side = fields.String()
    type = fields.String()
    product = fields.String()
    validity = fields.String()
    quantity = fields.Integer()
    filled_quantity = fields.Integer()
    pending_quantity = fields.Method("_pending")
    price = fields.Decimal(as_string=True, allow_none=True)
    trigger_price = fields.Decimal(as_string=True, allow_none=True)
    average_price = fields.Decimal(as_string=True, allow_none=True)
    status = fields.String()
    status_message = fields.String()
    reject_reasons = fields.List(fields.Nested(CheckSchema))
    reserved_cash = fields.Decimal(as_string=True)
    estimated_charges = fields.Decimal(as_string=True)
    margin = fields.Decimal(
        as_string=True,
        metadata={"description": "F&O margin the order blocks once filled (0 for cash equity)"},
    )
    tag = fields.String(allow_none=True)
    strategy_id = fields.String(allow_none=True)
    amo = fields.Boolean(metadata={"description": "Queued after-market order, not yet live"})
    parent_id = fields.Integer(
        allow_none=True, metadata={"description": "A slice's first slice (a sliced order's parent)"}
    )
    slices = fields.List(
        fields.Nested(OrderSliceSchema),
        metadata={"description": "Only in the answer to a sliced placement: every slice, the first included"},
    )
    broker_order_id = fields.String(allow_none=True)
    broker_status = fields.String(allow_none=True, metadata={"description": "Upstox's own status text"})
    broker_product = fields.String(allow_none=True, metadata={"description": "Upstox's product code"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()

    def _pending(self, obj) -> int:
        return (
            0
            if obj.status in ("filled", "cancelled", "rejected", "expired")
            else obj.quantity - obj.filled_quantity
        )


class CancelAllResultSchema(Schema):
    cancelled = fields.Integer()
    orders = fields.List(fields.Nested(OrderSchema))


class TradeSchema(Schema):
    id = fields.Integer()
    order_id = fields.Integer()
    account_id = fields.Integer()
    symbol = fields.String()
    side = fields.String()
    product = fields.String()
    quantity = fields.Integer()
    price = fields.Decimal(as_string=True)
    charges = fields.Decimal(as_string=True)
    realised_pnl = fields.Decimal(as_string=True)
    executed_at = fields.DateTime()


class PreviewResultSchema(Schema):
    allowed = fields.Boolean()
    checks = fields.List(fields.Nested(CheckSchema), metadata={"description": "Every failed check"})
    checks_run = fields.List(fields.String())
    trading_state = fields.String()
    estimated_charges = fields.Decimal(as_string=True)
    charges = fields.Dict(keys=fields.String(), values=fields.String())
    cash_required = fields.Decimal(as_string=True)
    margin = fields.Decimal(as_string=True, metadata={"description": "F&O margin (part of cash_required)"})
    available_cash = fields.Decimal(as_string=True)
    ltp = fields.Decimal(as_string=True)
    account_id = fields.Integer()
