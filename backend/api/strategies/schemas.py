"""Marshmallow schemas for the strategies namespace."""

from marshmallow import Schema, fields, validate

from backend.api.common import ListQuerySchema

INTERVALS = ["1m", "5m", "15m", "1h", "1d"]


class CatalogQuerySchema(Schema):
    kind = fields.String(load_default=None, validate=validate.OneOf(["signal", "options"]))


class CatalogEntrySchema(Schema):
    name = fields.String()
    kind = fields.String()
    description = fields.String()
    params_schema = fields.Raw(metadata={"description": "JSON schema of the params"})


class CatalogSchema(Schema):
    items = fields.List(fields.Nested(CatalogEntrySchema))


class AnalyzeRequestSchema(Schema):
    swagger_example = {"params": {"underlying": "NIFTY", "lots": 1}}
    params = fields.Dict(
        required=True,
        metadata={
            "example": {"underlying": "NIFTY", "lots": 1},
            "description": "the strategy's params (GET /strategies/catalog); no expiry: the nearest listed",
        },
    )
    as_of = fields.AwareDateTime(load_default=None, default_timezone=None)
    rate = fields.Float(load_default=None, validate=validate.Range(min=-0.05, max=0.5))


class PlaceRequestSchema(Schema):
    swagger_example = {"params": {"underlying": "NIFTY", "lots": 1}, "product": "D"}
    params = fields.Dict(required=True)
    account_id = fields.Integer(load_default=None)
    product = fields.String(load_default="D", validate=validate.OneOf(["D", "I"]))


class AnalysisSchema(Schema):
    strategy = fields.String()
    underlying = fields.String()
    expiry = fields.String(allow_none=True)
    spot = fields.String()
    lot_size = fields.Integer()
    t_years = fields.Float()
    rate = fields.Float()
    legs = fields.List(fields.Dict())
    net_premium = fields.String()
    premium_type = fields.String()
    max_profit = fields.String(metadata={"description": "amount or 'unlimited'"})
    max_loss = fields.String(metadata={"description": "amount or 'unlimited'"})
    breakevens = fields.List(fields.String())
    greeks = fields.Dict()
    margin = fields.String(metadata={"description": "F&O margin place blocks for these legs as one basket"})
    margin_method = fields.String()
    margin_detail = fields.Dict(metadata={"description": "scan_risk, short_option_minimum, span, exposure"})
    chart = fields.Dict(metadata={"description": "prices, expiry and today payoff series"})


class PlaceResultSchema(Schema):
    strategy = fields.String()
    legs = fields.List(fields.Dict())
    order_ids = fields.List(fields.Integer(allow_none=True))
    analysis = fields.Nested(AnalysisSchema)


class SavedStrategyInputSchema(Schema):
    swagger_example = {
        "name": "SMA 10/20 RELIANCE",
        "strategy": "sma_crossover",
        "params": {"fast": 10, "slow": 20},
        "symbols": ["RELIANCE"],
        "interval": "5m",
        "quantity": 1,
    }
    name = fields.String(required=True, validate=validate.Length(min=1, max=128))
    strategy = fields.String(required=True, validate=validate.Length(min=1, max=64))
    params = fields.Dict(load_default=dict)
    symbols = fields.List(fields.String(validate=validate.Length(min=1, max=64)), load_default=list)
    interval = fields.String(load_default="1m", validate=validate.OneOf(INTERVALS))
    account_id = fields.Integer(load_default=None, allow_none=True)
    quantity = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))


class SavedStrategyUpdateSchema(Schema):
    swagger_example = {"params": {"fast": 5, "slow": 20}}
    name = fields.String(validate=validate.Length(min=1, max=128))
    strategy = fields.String(validate=validate.Length(min=1, max=64))
    params = fields.Dict()
    symbols = fields.List(fields.String(validate=validate.Length(min=1, max=64)))
    interval = fields.String(validate=validate.OneOf(INTERVALS))
    account_id = fields.Integer(allow_none=True)
    quantity = fields.Integer(validate=validate.Range(min=1, max=1_000_000))


class SavedStrategySchema(Schema):
    id = fields.Integer()
    name = fields.String()
    strategy = fields.String()
    params = fields.Dict()
    symbols = fields.List(fields.String())
    interval = fields.String()
    account_id = fields.Integer(allow_none=True)
    quantity = fields.Integer()
    version = fields.Integer()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    deleted_at = fields.DateTime(allow_none=True)


class SavedListQuerySchema(ListQuerySchema):
    include_deleted = fields.Boolean(load_default=False)


class VersionSchema(Schema):
    version = fields.Integer()
    change = fields.String()
    snapshot = fields.Dict()
    created_at = fields.DateTime()


class VersionListSchema(Schema):
    items = fields.List(fields.Nested(VersionSchema))


class DeployRequestSchema(Schema):
    swagger_example = {}
    account_id = fields.Integer(load_default=None, allow_none=True)


class DeploymentSchema(Schema):
    id = fields.Integer()
    strategy_id = fields.Integer()
    account_id = fields.Integer(allow_none=True)
    strategy_version = fields.Integer()
    state = fields.String(metadata={"description": "running | stopped | failed"})
    runtime = fields.Dict(metadata={"description": "positions, last processed bar per symbol, counters"})
    error = fields.String(allow_none=True)
    started_at = fields.DateTime()
    stopped_at = fields.DateTime(allow_none=True)


class DeploymentLogSchema(Schema):
    id = fields.Integer()
    deployment_id = fields.Integer()
    created_at = fields.DateTime()
    level = fields.String()
    event = fields.String()
    message = fields.String()
    details = fields.Dict()
