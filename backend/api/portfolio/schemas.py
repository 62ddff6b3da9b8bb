"""Marshmallow schemas for the portfolio namespace."""

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from backend.api.common import ListQuerySchema
from backend.api.orders.schemas import OrderSchema

_MONEY = {"as_string": True, "allow_nan": False}
_POSITIVE = validate.Range(min=0, min_inclusive=False)


class AccountQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    account_id = fields.Integer(load_default=None, validate=validate.Range(min=1))


class PositionQuerySchema(AccountQuerySchema):
    product = fields.String(
        load_default=None,
        validate=validate.OneOf(["I", "D"]),
        metadata={"description": "I (intraday) or D (delivery); needed when the symbol is held in both"},
    )


class TradeListQuerySchema(ListQuerySchema):
    account_id = fields.Integer(load_default=None, validate=validate.Range(min=1))
    symbol = fields.String(load_default=None, validate=validate.Length(max=64))


class SummarySchema(Schema):
    account_id = fields.Integer()
    account_name = fields.String()
    mode = fields.String()
    starting_cash = fields.Decimal(as_string=True)
    cash = fields.Decimal(as_string=True)
    available_cash = fields.Decimal(as_string=True)
    margin_used = fields.Decimal(as_string=True)
    positions_value = fields.Decimal(as_string=True)
    equity = fields.Decimal(as_string=True)
    realised_pnl = fields.Decimal(as_string=True)
    unrealised_pnl = fields.Decimal(as_string=True)
    day_pnl = fields.Decimal(as_string=True)
    open_positions = fields.Integer()


class PositionSchema(Schema):
    account_id = fields.Integer()
    symbol = fields.String()
    product = fields.String()
    quantity = fields.Integer()
    average_price = fields.Decimal(as_string=True)
    cost_basis = fields.Decimal(as_string=True)
    ltp = fields.Decimal(as_string=True, allow_none=True)
    market_value = fields.Decimal(as_string=True, allow_none=True)
    unrealised_pnl = fields.Decimal(as_string=True, allow_none=True)
    realised_pnl = fields.Decimal(as_string=True)
    stops = fields.Dict(allow_none=True)


class AccountSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    mode = fields.String()
    starting_cash = fields.Decimal(as_string=True)
    cash = fields.Decimal(as_string=True)
    is_default = fields.Boolean()
    created_at = fields.DateTime()


class AccountCreateSchema(Schema):
    swagger_example = {"name": "Swing trades", "starting_cash": "500000.00"}
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    starting_cash = fields.Decimal(load_default=None, validate=validate.Range(min=1, max=10**12), **_MONEY)
    is_default = fields.Boolean(load_default=False)


class AccountUpdateSchema(Schema):
    swagger_example = {"name": "Swing trades (2026)"}
    name = fields.String(validate=validate.Length(min=1, max=100))
    is_default = fields.Boolean()

    @validates_schema
    def _not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError({"_schema": ["Give name and/or is_default."]})


class ResetSchema(Schema):
    swagger_example = {"confirm": "RESET", "starting_cash": "1000000.00"}
    confirm = fields.String(required=True, metadata={"description": "Must be exactly RESET"})
    starting_cash = fields.Decimal(load_default=None, validate=validate.Range(min=1, max=10**12), **_MONEY)


class StopsSchema(Schema):
    swagger_example = {"trailing_pct": "5"}
    stop_loss = fields.Decimal(load_default=None, allow_none=True, validate=_POSITIVE, **_MONEY)
    take_profit = fields.Decimal(load_default=None, allow_none=True, validate=_POSITIVE, **_MONEY)
    trailing_abs = fields.Decimal(load_default=None, allow_none=True, validate=_POSITIVE, **_MONEY)
    trailing_pct = fields.Decimal(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=0, max=100, min_inclusive=False),
        **_MONEY,
    )


class CloseResultSchema(Schema):
    orders = fields.List(fields.Nested(OrderSchema))


class RiskSchema(Schema):
    account_id = fields.Integer()
    defaults = fields.Dict()
    overrides = fields.Dict()
    limits = fields.Dict()
    trading_state = fields.String()
    breaker = fields.Dict()
    global_kill = fields.Boolean()


class RiskUpdateSchema(Schema):
    swagger_example = {"overrides": {"max_order_value": "250000", "max_orders_per_day": 50}}
    overrides = fields.Dict(
        keys=fields.String(), required=True, metadata={"description": "limit name -> value (null removes)"}
    )


class KillSwitchSchema(Schema):
    swagger_example = {"on": True, "reason": "done for the day"}
    on = fields.Boolean(required=True)
    reason = fields.String(load_default="", validate=validate.Length(max=255))


class SuggestQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    account_id = fields.Integer(load_default=None, validate=validate.Range(min=1))
    symbol = fields.String(required=True, validate=validate.Length(min=1, max=64))
    price = fields.Decimal(load_default=None, validate=_POSITIVE, **_MONEY)
    stop_price = fields.Decimal(load_default=None, validate=_POSITIVE, **_MONEY)


class SuggestionSchema(Schema):
    symbol = fields.String()
    quantity = fields.Integer()
    by_value = fields.Integer()
    by_risk = fields.Integer(allow_none=True)
    binding = fields.String()
    explanation = fields.String()
    equity = fields.Decimal(as_string=True)
    price = fields.Decimal(as_string=True)
    stop_price = fields.Decimal(as_string=True, allow_none=True)
