"""Marshmallow schemas for the market-data namespace (query strings and responses)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from backend.api.common import CommaList, ListQuerySchema
from backend.domain.market.calendar import IST
from backend.domain.market.provider import INTERVALS

INTERVAL_CHOICES = list(INTERVALS)
INSTRUMENT_TYPES = ["EQ", "INDEX", "FUT", "CE", "PE"]
INDICATOR_NAMES = ["sma", "ema", "rsi", "macd", "bollinger", "vwap", "atr"]
# Span used when ``from`` is omitted.
DEFAULT_SPAN = {
    "1m": timedelta(days=1),
    "5m": timedelta(days=5),
    "15m": timedelta(days=10),
    "1h": timedelta(days=30),
    "1d": timedelta(days=365),
}


class Instant(fields.Field):
    """A point in time: ISO-8601 datetime, ``YYYY-MM-DD`` or Unix seconds.

    Naive values are exchange time (Asia/Kolkata). A bare date means the start of that day, or
    its end when the field is an upper bound (``end_of_day=True``)."""

    def __init__(self, *args, end_of_day: bool = False, **kwargs):
        kwargs.setdefault("metadata", {})
        kwargs["metadata"].setdefault(
            "description", "ISO-8601 datetime, YYYY-MM-DD or Unix seconds; naive = Asia/Kolkata"
        )
        super().__init__(*args, **kwargs)
        self.end_of_day = end_of_day

    def _deserialize(self, value, attr, data, **kwargs) -> datetime:
        text = str(value).strip()
        if text.lstrip("-").isdigit():
            try:
                return datetime.fromtimestamp(int(text), tz=UTC)
            except (OverflowError, OSError, ValueError) as exc:
                raise ValidationError("Not a valid Unix timestamp.") from exc
        try:
            if len(text) == 10:
                d = date.fromisoformat(text)
                t = time(23, 59, 59) if self.end_of_day else time(0, 0)
                return datetime.combine(d, t, tzinfo=IST).astimezone(UTC)
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValidationError("Not a valid date or datetime (ISO-8601 or Unix seconds).") from exc
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=IST)
        return dt.astimezone(UTC)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else value.isoformat()


class _Query(Schema):
    class Meta:
        unknown = EXCLUDE


class SymbolsQuerySchema(_Query):
    symbols = CommaList(
        fields.String(validate=validate.Length(min=1, max=64)),
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={"description": "Comma-separated trading symbols (at most 500)"},
    )


class SymbolsBodySchema(Schema):
    """The same list as a JSON body: 500 symbols do not fit a request line (gunicorn: 8,190 bytes)."""

    swagger_example = {"symbols": ["RELIANCE", "SBIN", "INFY"]}

    symbols = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={"description": "Trading symbols (at most 500)", "example": ["RELIANCE", "SBIN"]},
    )


class RangeQuerySchema(_Query):
    interval = fields.String(load_default="1d", validate=validate.OneOf(INTERVAL_CHOICES))
    from_ = Instant(data_key="from", load_default=None)
    to = Instant(load_default=None, end_of_day=True)

    @validates_schema
    def _order(self, data, **kwargs):
        if data.get("from_") and data.get("to") and data["to"] < data["from_"]:
            raise ValidationError("Must not be before 'from'.", "to")


def resolve_range(query: dict) -> tuple[datetime, datetime]:
    """Fill the defaults of a loaded range query: ``to`` = now, ``from`` = a span per interval."""
    end = query.get("to") or datetime.now(UTC)
    start = query.get("from_") or end - DEFAULT_SPAN[query["interval"]]
    return start, end


class IndicatorQuerySchema(RangeQuerySchema):
    name = fields.String(required=True, validate=validate.OneOf(INDICATOR_NAMES))
    period = fields.Integer(load_default=None, validate=validate.Range(min=1, max=1000))
    fast = fields.Integer(load_default=None, validate=validate.Range(min=1, max=1000))
    slow = fields.Integer(load_default=None, validate=validate.Range(min=2, max=1000))
    signal = fields.Integer(load_default=None, validate=validate.Range(min=1, max=1000))
    k = fields.Float(load_default=None, validate=validate.Range(min=0.1, max=10))


class ExpiryQuerySchema(_Query):
    expiry = fields.Date(load_default=None, metadata={"description": "YYYY-MM-DD; default: nearest"})


class InstrumentQuerySchema(ListQuerySchema):
    q = fields.String(load_default=None, validate=validate.Length(max=64), metadata={"description": "Prefix"})
    type = fields.String(load_default=None, validate=validate.OneOf(INSTRUMENT_TYPES))


# --------------------------------------------------------------------------- responses


class Money(fields.Decimal):
    """A decimal string without storage padding ("0.05", not "0.0500")."""

    def __init__(self, **kw):
        super().__init__(as_string=True, **kw)

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return format(Decimal(value).normalize(), "f")


def _money(**kw):
    return Money(**kw)


class QuoteSchema(Schema):
    symbol = fields.String(required=True)
    instrument_key = fields.String()
    ltp = _money(required=True)
    bid = _money()
    ask = _money()
    open = _money()
    high = _money()
    low = _money()
    close = _money(metadata={"description": "Previous session close"})
    volume = fields.Integer()
    oi = fields.Integer()
    ts = fields.DateTime()


class QuotesSchema(Schema):
    items = fields.List(fields.Nested(QuoteSchema), required=True)


class LtpItemSchema(Schema):
    symbol = fields.String(required=True)
    ltp = _money(required=True)


class LtpSchema(Schema):
    items = fields.List(fields.Nested(LtpItemSchema), required=True)


class CandleSchema(Schema):
    ts = fields.DateTime(required=True, metadata={"description": "Bar open time (UTC)"})
    open = _money(required=True)
    high = _money(required=True)
    low = _money(required=True)
    close = _money(required=True)
    volume = fields.Integer(required=True)
    oi = fields.Integer()


class CandlesSchema(Schema):
    symbol = fields.String(required=True)
    interval = fields.String(required=True)
    start = fields.DateTime(data_key="from", required=True)
    end = fields.DateTime(data_key="to", required=True)
    candles = fields.List(fields.Nested(CandleSchema), required=True)


class InstrumentSchema(Schema):
    id = fields.Integer()
    instrument_key = fields.String(required=True)
    trading_symbol = fields.String(required=True)
    name = fields.String()
    exchange = fields.String()
    segment = fields.String()
    instrument_type = fields.String()
    lot_size = fields.Integer()
    tick_size = _money()
    freeze_quantity = fields.Integer(allow_none=True)
    expiry = fields.Date(allow_none=True)
    strike = _money(allow_none=True)
    underlying = fields.String(allow_none=True)
    sector = fields.String(allow_none=True)


class OptionLegSchema(Schema):
    ltp = _money(required=True)
    bid = _money()
    ask = _money()
    iv = fields.Float()
    delta = fields.Float()
    gamma = fields.Float()
    theta = fields.Float()
    vega = fields.Float()
    oi = fields.Integer()
    volume = fields.Integer()
    instrument_key = fields.String()


class ChainRowSchema(Schema):
    strike = _money(required=True)
    call = fields.Nested(OptionLegSchema, allow_none=True)
    put = fields.Nested(OptionLegSchema, allow_none=True)


class OptionChainSchema(Schema):
    underlying = fields.String(required=True)
    expiry = fields.Date(required=True)
    spot = _money(required=True)
    lot_size = fields.Integer()
    pcr = fields.Float(allow_none=True, metadata={"description": "Put-call ratio by open interest"})
    expiries = fields.List(fields.Date())
    rows = fields.List(fields.Nested(ChainRowSchema), required=True)


class ChainAnalyticsSchema(Schema):
    underlying = fields.String(required=True)
    expiry = fields.Date(required=True)
    spot = _money(required=True)
    pcr_oi = fields.Float(allow_none=True)
    pcr_volume = fields.Float(allow_none=True)
    max_pain = _money(allow_none=True)
    atm_strike = _money(allow_none=True)
    atm_iv = fields.Float(allow_none=True)
    total_call_oi = fields.Integer()
    total_put_oi = fields.Integer()


class MarketStatusSchema(Schema):
    exchange = fields.String(required=True)
    timezone = fields.String(required=True)
    is_open = fields.Boolean(required=True)
    reason = fields.String(
        required=True, metadata={"description": "open|pre_open|after_close|weekend|holiday"}
    )
    now = fields.DateTime(required=True)
    next_open = fields.DateTime(required=True)
    next_close = fields.DateTime(required=True)


class IndicatorSchema(Schema):
    symbol = fields.String(required=True)
    name = fields.String(required=True)
    interval = fields.String(required=True)
    params = fields.Dict()
    ts = fields.List(fields.DateTime(), required=True)
    values = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.Float(allow_none=True)),
        metadata={"description": "Output name -> series aligned with ts (null during warm-up)"},
    )


# --------------------------------------------------------------------------- UDF queries

UDF_RESOLUTIONS = {"1": "1m", "5": "5m", "15": "15m", "60": "1h", "1D": "1d", "D": "1d"}


class UdfSymbolQuerySchema(_Query):
    symbol = fields.String(required=True, validate=validate.Length(min=1, max=80))


class UdfSearchQuerySchema(_Query):
    query = fields.String(load_default="", validate=validate.Length(max=64))
    type = fields.String(load_default="")
    exchange = fields.String(load_default="")
    limit = fields.Integer(load_default=30, validate=validate.Range(min=1, max=100))


class UdfHistoryQuerySchema(_Query):
    symbol = fields.String(required=True, validate=validate.Length(min=1, max=80))
    resolution = fields.String(required=True, validate=validate.OneOf(list(UDF_RESOLUTIONS)))
    from_ = fields.Integer(data_key="from", required=True)
    to = fields.Integer(required=True)
    countback = fields.Integer(load_default=None, validate=validate.Range(min=1, max=20000))


# --- TradingView UDF responses (the protocol's own shapes; documented, not re-shaped) ---------


class UdfExchangeSchema(Schema):
    value = fields.String()
    name = fields.String()
    desc = fields.String()


class UdfSymbolTypeSchema(Schema):
    name = fields.String()
    value = fields.String()


class UdfConfigSchema(Schema):
    supported_resolutions = fields.List(fields.String())
    supports_search = fields.Boolean()
    supports_group_request = fields.Boolean()
    supports_marks = fields.Boolean()
    supports_timescale_marks = fields.Boolean()
    supports_time = fields.Boolean()
    exchanges = fields.List(fields.Nested(UdfExchangeSchema))
    symbols_types = fields.List(fields.Nested(UdfSymbolTypeSchema))


class UdfErrorFieldsMixin(Schema):
    s = fields.String(metadata={"description": "'ok', 'no_data' or 'error'"})
    errmsg = fields.String(metadata={"description": "present when s == 'error'"})


class UdfSymbolInfoSchema(UdfErrorFieldsMixin):
    name = fields.String()
    ticker = fields.String()
    full_name = fields.String()
    description = fields.String()
    type = fields.String()
    session = fields.String()
    session_holidays = fields.String()
    timezone = fields.String()
    exchange = fields.String()
    listed_exchange = fields.String()
    exchange_traded = fields.String(data_key="exchange-traded", metadata={"description": "older UDF name"})
    exchange_listed = fields.String(data_key="exchange-listed", metadata={"description": "older UDF name"})
    minmov = fields.Integer()
    minmov2 = fields.Integer()
    pointvalue = fields.Integer()
    pricescale = fields.Integer()
    has_intraday = fields.Boolean()
    has_daily = fields.Boolean()
    has_weekly_and_monthly = fields.Boolean()
    has_no_volume = fields.Boolean()
    visible_plots_set = fields.String()
    supported_resolutions = fields.List(fields.String())
    intraday_multipliers = fields.List(fields.String())
    volume_precision = fields.Integer()
    data_status = fields.String()
    currency_code = fields.String()


class UdfSearchResultSchema(Schema):
    symbol = fields.String()
    full_name = fields.String()
    description = fields.String()
    exchange = fields.String()
    ticker = fields.String()
    type = fields.String()


class UdfHistorySchema(UdfErrorFieldsMixin):
    t = fields.List(fields.Integer(), metadata={"description": "bar times, Unix seconds"})
    o = fields.List(fields.Float())
    h = fields.List(fields.Float())
    l = fields.List(fields.Float())  # noqa: E741 - the UDF protocol's field name
    c = fields.List(fields.Float())
    v = fields.List(fields.Integer())
    nextTime = fields.Integer(metadata={"description": "with s == 'no_data': time of the previous bar"})  # noqa: N815
