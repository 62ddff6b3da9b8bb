"""Marshmallow schemas for the indices namespace (portfolio construction, docs/portfolios.md)."""

from datetime import date

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from backend.api.common import ListQuerySchema
from backend.domain.portfolio import DRIFT_MODES, METHODS, RULES

# Old enough for any stored history, and keeps date arithmetic (warm-up windows) in range.
EARLIEST = date(2000, 1, 1)
_DATE_RANGE = validate.Range(min=EARLIEST, max=date(2100, 1, 1))
_SYMBOL = fields.String(validate=validate.Length(min=1, max=64))


def _positive(value) -> None:
    # A function, not validate.Range: apispec would copy a Decimal bound into the schema as a string.
    if value <= 0:
        raise ValidationError("Must be greater than 0.")


def _fraction(value) -> None:
    if not 0 < value <= 1:
        raise ValidationError("Must be greater than 0 and at most 1.")


class SharesEntrySchema(Schema):
    effective_from = fields.Date(required=True, validate=_DATE_RANGE)
    shares = fields.Decimal(required=True, as_string=True, validate=_positive)


class IndexCreateSchema(Schema):
    swagger_example = {
        "name": "Bank risk parity",
        "symbols": ["HDFCBANK", "ICICIBANK", "SBIN", "KOTAKBANK", "AXISBANK"],
        "weighting": "risk_parity",
        "lookback": 60,
        "rebalance": "monthly",
        "start_date": "2024-01-01",
        "base_value": "1000",
        "currency": "INR",
        "capital": "10000000",
    }

    name = fields.String(required=True, validate=validate.Length(min=1, max=80))
    symbols = fields.List(_SYMBOL, required=True, validate=validate.Length(min=1, max=100))
    weighting = fields.String(required=True, validate=validate.OneOf(METHODS))
    weights = fields.Dict(
        keys=_SYMBOL,
        values=fields.Decimal(as_string=True, validate=validate.Range(min=0)),
        load_default=None,
        metadata={"description": "custom weighting: a weight >= 0 per symbol (normalised to sum to 1)"},
    )
    shares_outstanding = fields.Dict(
        keys=_SYMBOL,
        values=fields.List(fields.Nested(SharesEntrySchema), validate=validate.Length(min=1, max=400)),
        load_default=None,
        metadata={"description": "market_cap weighting: dated shares outstanding per symbol"},
    )
    lookback = fields.Integer(
        load_default=60,
        validate=validate.Range(min=5, max=1260),
        metadata={"description": "daily returns in the covariance window (risk-based methods)"},
    )
    rebalance = fields.String(load_default="monthly", validate=validate.OneOf(RULES))
    drift_threshold = fields.Decimal(
        as_string=True,
        load_default=None,
        validate=_fraction,
        metadata={"description": "drift rebalance: the band, e.g. 0.05 (5 points absolute, 5% relative)"},
    )
    drift_mode = fields.String(load_default="absolute", validate=validate.OneOf(DRIFT_MODES))
    start_date = fields.Date(required=True, validate=_DATE_RANGE)
    base_value = fields.Decimal(as_string=True, load_default="1000", validate=_positive)
    currency = fields.String(
        load_default="INR",
        validate=validate.Regexp(r"^[A-Za-z]{3}$", error="Must be a 3-letter currency code."),
        metadata={
            "description": "currency the index is quoted in (INR, or converted at the FX provider's rates)"
        },
    )
    capital = fields.Decimal(
        as_string=True,
        load_default="10000000",
        validate=_positive,
        metadata={"description": "notional portfolio in INR on which rebalance charges are computed"},
    )
    apply_charges = fields.Boolean(load_default=True)

    @validates_schema
    def _consistent(self, data, **kwargs) -> None:
        if data.get("weighting") == "custom" and not data.get("weights"):
            raise ValidationError("custom weighting needs a weight per symbol.", "weights")
        if data.get("rebalance") == "drift" and data.get("drift_threshold") is None:
            raise ValidationError("a drift rebalance needs a threshold.", "drift_threshold")
        if data.get("weighting") == "market_cap" and not data.get("shares_outstanding"):
            raise ValidationError(
                "market_cap weighting needs shares outstanding per symbol.", "shares_outstanding"
            )


class IndexSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    symbols = fields.List(fields.String())
    weighting = fields.String()
    weights = fields.Method("_weights", metadata={"description": "custom weighting only"})
    shares_outstanding = fields.Method("_shares", metadata={"description": "market_cap weighting only"})
    lookback = fields.Integer()
    rebalance = fields.String()
    drift_threshold = fields.Decimal(as_string=True, allow_none=True)
    drift_mode = fields.String()
    start_date = fields.Date()
    base_value = fields.Decimal(as_string=True)
    currency = fields.String()
    capital = fields.Decimal(as_string=True)
    apply_charges = fields.Boolean()
    computed_until = fields.Date(allow_none=True, metadata={"description": "last day with a value"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()

    def _weights(self, obj) -> dict | None:
        return (obj.weighting_params or {}).get("weights")

    def _shares(self, obj) -> dict | None:
        raw = (obj.weighting_params or {}).get("shares_outstanding")
        if not raw:
            return None
        return {s: [{"effective_from": d, "shares": n} for d, n in v] for s, v in raw.items()}


class IndexComputeSchema(Schema):
    swagger_example = {"end_date": "2024-12-31"}

    end_date = fields.Date(
        load_default=None,
        validate=_DATE_RANGE,
        metadata={"description": "compute up to this day (default today)"},
    )


class IndexComputeResultSchema(Schema):
    index = fields.Nested(IndexSchema)
    added_values = fields.Integer(metadata={"description": "days appended by this computation"})
    added_rebalances = fields.Integer(metadata={"description": "rebalances (allocations) appended"})


class IndexValuesQuerySchema(ListQuerySchema):
    from_ = fields.Date(data_key="from", load_default=None)
    to = fields.Date(load_default=None)


class IndexValueSchema(Schema):
    date = fields.Date(attribute="day")
    value = fields.Decimal(as_string=True)
    created_at = fields.DateTime()


class AllocationQuerySchema(Schema):
    on = fields.Date(
        load_default=None, metadata={"description": "the allocation in force that day (default: latest)"}
    )


class AllocationItemSchema(Schema):
    symbol = fields.String()
    target_weight = fields.Decimal(as_string=True)
    current_weight = fields.Decimal(
        as_string=True,
        allow_none=True,
        metadata={"description": "weight at the last computed close (latest allocation only)"},
    )
    units = fields.Decimal(
        as_string=True, metadata={"description": "fractional units of the notional capital"}
    )
    traded_units = fields.Decimal(as_string=True, metadata={"description": "bought (+) or sold (-) that day"})
    price = fields.Decimal(as_string=True, metadata={"description": "close the trade was done at"})
    charges = fields.Decimal(as_string=True, metadata={"description": "that order's charges, INR"})


class AllocationSchema(Schema):
    index_id = fields.Integer()
    rebalanced_on = fields.Date()
    computed_until = fields.Date(allow_none=True)
    total_charges = fields.Decimal(as_string=True)
    items = fields.List(fields.Nested(AllocationItemSchema))


class SimulationRequestSchema(Schema):
    swagger_example = {
        "amount": "10000",
        "currency": "USD",
        "start_date": "2024-01-01",
        "end_date": "2024-12-31",
    }

    amount = fields.Decimal(required=True, as_string=True, validate=_positive)
    currency = fields.String(
        load_default="INR",
        validate=validate.Regexp(r"^[A-Za-z]{3}$", error="Must be a 3-letter currency code."),
    )
    start_date = fields.Date(required=True, validate=_DATE_RANGE)
    end_date = fields.Date(load_default=None, validate=_DATE_RANGE)


class HoldingSchema(Schema):
    symbol = fields.String()
    shares = fields.Integer()


class SimulatedValueSchema(Schema):
    date = fields.Date()
    value = fields.Decimal(as_string=True)


class SimulationResultSchema(Schema):
    index_id = fields.Integer()
    currency = fields.String()
    start_date = fields.Date()
    end_date = fields.Date()
    invested = fields.Decimal(as_string=True)
    final_value = fields.Decimal(as_string=True)
    total_return = fields.Float(metadata={"description": "final_value / invested - 1"})
    charges = fields.Decimal(as_string=True)
    charges_currency = fields.String()
    rebalances = fields.Integer()
    holdings = fields.List(fields.Nested(HoldingSchema), metadata={"description": "whole shares at the end"})
    cash = fields.Decimal(as_string=True, metadata={"description": "uninvested cash at the end, INR"})
    values = fields.List(fields.Nested(SimulatedValueSchema), metadata={"description": "in `currency`"})
