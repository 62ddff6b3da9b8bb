"""Marshmallow schemas for the analytics namespace."""

from marshmallow import Schema, ValidationError, fields, validate


def _positive(value) -> None:
    # A function, not validate.Range: apispec would copy a Decimal bound into the schema as a string.
    if value <= 0:
        raise ValidationError("Must be greater than 0.")


class SimulateRequestSchema(Schema):
    swagger_example = {
        "symbols": ["RELIANCE", "INFY"],
        "weights": [0.6, 0.4],
        "amount": "100000",
        "start": "2025-01-01",
        "end": "2025-06-30",
        "rebalance": "monthly",
    }
    symbols = fields.List(fields.String(validate=validate.Length(min=1, max=64)), required=True,
                          validate=validate.Length(min=1, max=50))  # fmt: skip
    weights = fields.List(fields.Float(validate=validate.Range(min=0)), load_default=None)
    amount = fields.Decimal(required=True, as_string=True, validate=_positive)
    start = fields.Date(required=True)
    end = fields.Date(load_default=None)
    rebalance = fields.String(load_default="never", validate=validate.OneOf(["never", "monthly"]))


class MetricsSchema(Schema):
    total_return = fields.Float(allow_none=True)
    cagr = fields.Float(allow_none=True)
    annual_volatility = fields.Float(allow_none=True)
    sharpe = fields.Float(allow_none=True)
    sortino = fields.Float(allow_none=True)
    max_drawdown = fields.Float(allow_none=True)
    max_drawdown_duration = fields.Float(allow_none=True)
    var_95_historical = fields.Float(allow_none=True)
    var_95_parametric = fields.Float(allow_none=True)


class SimulateResultSchema(Schema):
    currency = fields.String()
    symbols = fields.List(fields.String())
    weights = fields.List(fields.Float())
    rebalance = fields.String()
    dates = fields.List(fields.String())
    equity = fields.List(fields.Float())
    final_value = fields.Decimal(as_string=True)
    metrics = fields.Nested(MetricsSchema)


class AccountRangeQuerySchema(Schema):
    account_id = fields.Integer(load_default=None)
    from_ = fields.Date(data_key="from", load_default=None)
    to = fields.Date(load_default=None)


class PnlQuerySchema(AccountRangeQuerySchema):
    group_by = fields.String(load_default="day", validate=validate.OneOf(["day", "symbol", "strategy"]))


class RiskQuerySchema(Schema):
    account_id = fields.Integer(load_default=None)
    lookback_days = fields.Integer(load_default=250, validate=validate.Range(min=20, max=1000))
    level = fields.Float(load_default=0.95, validate=validate.Range(min=0.5, max=0.999))


class PerformanceSchema(Schema):
    account_id = fields.Integer()
    currency = fields.String()
    dates = fields.List(fields.String())
    equity = fields.List(fields.String())
    metrics = fields.Nested(MetricsSchema)
    fills = fields.Integer()
    charges = fields.Decimal(as_string=True)
    realised_pnl = fields.Decimal(as_string=True)


class ExposureSchema(Schema):
    key = fields.String()
    value = fields.Decimal(as_string=True)
    weight = fields.Float()


class RiskSchema(Schema):
    account_id = fields.Integer()
    currency = fields.String()
    gross_exposure = fields.Decimal(as_string=True)
    net_exposure = fields.Decimal(as_string=True)
    by_symbol = fields.List(fields.Nested(ExposureSchema))
    by_sector = fields.List(fields.Nested(ExposureSchema))
    concentration_hhi = fields.Float()
    largest_weight = fields.Float()
    var_level = fields.Float()
    var_historical = fields.Decimal(as_string=True, allow_none=True)
    var_parametric = fields.Decimal(as_string=True, allow_none=True)
    beta = fields.Float(allow_none=True, metadata={"description": "to NIFTY 50"})


class PnlItemSchema(Schema):
    key = fields.String()
    realised_pnl = fields.Decimal(as_string=True)
    charges = fields.Decimal(as_string=True)
    net_pnl = fields.Decimal(as_string=True)
    fills = fields.Integer()


class PnlSchema(Schema):
    account_id = fields.Integer()
    group_by = fields.String()
    items = fields.List(fields.Nested(PnlItemSchema))


class TradeStatsSchema(Schema):
    account_id = fields.Integer()
    closed_trades = fields.Integer()
    win_rate = fields.Float(allow_none=True)
    profit_factor = fields.Float(allow_none=True)
    expectancy = fields.Float(allow_none=True)
    best = fields.Float(allow_none=True)
    worst = fields.Float(allow_none=True)
    sqn = fields.Float(allow_none=True)


class SnapshotRequestSchema(Schema):
    swagger_example = {}
    account_id = fields.Integer(load_default=None)


class SnapshotSchema(Schema):
    account_id = fields.Integer()
    day = fields.Date()
    equity = fields.Decimal(as_string=True)
    cash = fields.Decimal(as_string=True)
    positions_value = fields.Decimal(as_string=True)
