"""Marshmallow schemas for the backtest namespace."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from backend.api.common import ListQuerySchema
from backend.domain.backtest.annualise import MARKET_CHOICES
from backend.domain.backtest.multi import REBALANCE_CHOICES, validate_weights
from backend.domain.backtest.timestamps import FORMATS
from backend.domain.errors import ValidationFailed

INTERVALS = ["1m", "5m", "15m", "1h", "1d"]


class StoreDataSchema(Schema):
    symbol = fields.String(required=True, validate=validate.Length(min=1, max=64))
    interval = fields.String(required=True, validate=validate.OneOf(INTERVALS))
    start = fields.AwareDateTime(required=True, default_timezone=None)
    end = fields.AwareDateTime(required=True, default_timezone=None)


class CostsSchema(Schema):
    model = fields.String(load_default="flat", validate=validate.OneOf(["flat", "charges"]))
    rate = fields.Float(
        load_default=0.0,
        validate=validate.Range(min=0.0, max=0.1, max_inclusive=False),
        metadata={"description": "flat model: fraction of traded value per side (0.002 = 0.2 %)"},
    )
    product = fields.String(
        load_default="D",
        validate=validate.OneOf(["D", "I"]),
        metadata={"description": "charges model: D delivery, I intraday (config/trading.yaml)"},
    )
    segment = fields.String(load_default="EQ", validate=validate.Length(min=1, max=8))


class SavedStrategyRefSchema(Schema):
    id = fields.Integer(required=True, strict=True)
    version = fields.Integer(
        load_default=None,
        strict=True,
        validate=validate.Range(min=1),
        metadata={"description": "default: latest"},
    )


class RunSettingsSchema(Schema):
    """Account, costs and annualisation settings shared by single-asset and portfolio backtests."""

    cash = fields.Decimal(load_default=None, as_string=True, places=2)
    costs = fields.Nested(CostsSchema, load_default=None)
    slippage = fields.Float(load_default=0.0, validate=validate.Range(min=0.0, max=0.1, max_inclusive=False))
    fractional = fields.Boolean(load_default=False)
    long_only = fields.Boolean(load_default=True)
    periods_per_year = fields.Float(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=1.0),
        metadata={"description": "override; default: inferred from the bar spacing and the market calendar"},
    )
    market = fields.String(
        load_default="auto",
        validate=validate.OneOf(list(MARKET_CHOICES)),
        metadata={
            "description": "periods-per-year calendar: auto, nse (252 x 375 min), crypto (24x7), fx (24x5)"
        },
    )
    risk_free = fields.Float(
        load_default=0.0, validate=validate.Range(min=-0.5, max=0.5), metadata={"description": "annual rate"}
    )

    @validates_schema
    def _cash(self, data, **_kwargs):
        if data.get("cash") is None:
            data["cash"] = 10000
        elif data["cash"] <= 0:
            raise ValidationError("Must be greater than 0.", "cash")


class BacktestRequestSchema(RunSettingsSchema):
    swagger_example = {
        "strategy": "sma_crossover",
        "params": {"fast": 10, "slow": 20},
        "data": {
            "symbol": "RELIANCE",
            "interval": "1d",
            "start": "2025-01-01T00:00:00+05:30",
            "end": "2025-12-31T00:00:00+05:30",
        },
        "cash": "100000.00",
        "costs": {"model": "charges", "product": "D"},
    }
    strategy = fields.String(
        load_default=None, metadata={"example": "sma_crossover", "description": "or saved_strategy"}
    )
    saved_strategy = fields.Nested(
        SavedStrategyRefSchema,
        load_default=None,
        metadata={
            "description": "run a saved strategy's version (its strategy and params) instead of strategy"
        },
    )
    params = fields.Dict(load_default=dict, metadata={"example": {"fast": 10, "slow": 20}})
    data = fields.Nested(StoreDataSchema, load_default=None, metadata={"description": "candle store range"})
    csv = fields.String(
        load_default=None,
        metadata={
            "description": "OHLCV CSV text instead of data (header: date,open,high,low,close[,volume])"
        },
    )
    stop_loss = fields.Float(load_default=None, allow_none=True)
    take_profit = fields.Float(load_default=None, allow_none=True)
    time_format = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(list(FORMATS)),
        metadata={"description": "CSV timestamp format when detection is ambiguous"},
    )

    @validates_schema
    def _one_source(self, data, **_kwargs):
        self._check_source(data)
        if (data.get("strategy") is None) == (data.get("saved_strategy") is None):
            raise ValidationError("Give exactly one of 'strategy' or 'saved_strategy'.", "strategy")

    def _check_source(self, data):
        if (data.get("data") is None) == (data.get("csv") is None):
            raise ValidationError("Give exactly one of 'data' or 'csv'.", "data")


class UploadRequestSchema(BacktestRequestSchema):
    """The ``request`` part of a multipart upload: the CSV is the ``file`` part."""

    swagger_example = {"strategy": "sma_crossover", "params": {"fast": 10, "slow": 20}}

    def _check_source(self, data):
        if data.get("data") is not None or data.get("csv") is not None:
            raise ValidationError("The upload is the data: leave out 'data' and 'csv'.", "data")


class CsvUploadQuerySchema(Schema):
    """Query of a ``text/csv`` upload: the body is the CSV, the request JSON rides in ``request``."""

    request = fields.String(
        load_default="{}",
        validate=validate.Length(max=8192),
        metadata={
            "description": "BacktestRequest JSON without csv/data (URL-encoded), e.g. "
            '{"strategy":"sma_crossover","params":{"fast":10,"slow":20}}',
            "x-example": '{"strategy": "sma_crossover", "params": {"fast": 10, "slow": 20}}',
        },
    )


class TradeSchema(Schema):
    index = fields.Integer()
    symbol = fields.String(metadata={"description": "portfolio backtests only"})
    entry_bar = fields.Integer()
    exit_bar = fields.Integer()
    entry_time = fields.String(allow_none=True)
    exit_time = fields.String(allow_none=True)
    entry_price = fields.Float()
    exit_price = fields.Float()
    size = fields.Float()
    pnl = fields.Float()
    return_pct = fields.Float()
    commission = fields.Float()
    exit_reason = fields.String()


class TradeListQuerySchema(ListQuerySchema):
    pass


class EquityQuerySchema(Schema):
    points = fields.Integer(load_default=1000, strict=False, validate=validate.Range(min=2, max=20_000))


class EquityPointsSchema(Schema):
    bars = fields.Integer()
    points = fields.Integer()
    bar = fields.List(fields.Integer())
    time = fields.List(fields.String(), allow_none=True)
    equity = fields.List(fields.Float(), metadata={"description": "last equity of each bucket"})
    equity_min = fields.List(fields.Float())
    equity_max = fields.List(fields.Float())
    drawdown_max = fields.List(fields.Float())


class SweepRequestSchema(BacktestRequestSchema):
    swagger_example = {
        "strategy": "sma_crossover",
        "grid": {"fast": [5, 10], "slow": [20, 30]},
        "data": {
            "symbol": "RELIANCE",
            "interval": "1d",
            "start": "2025-01-01T00:00:00+05:30",
            "end": "2025-12-31T00:00:00+05:30",
        },
        "cash": "100000.00",
        "metric": "sharpe",
    }
    grid = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.Raw(), validate=validate.Length(min=1)),
        required=True,
        metadata={"example": {"fast": [5, 10], "slow": [20, 30]}},
    )
    metric = fields.String(load_default="sharpe", metadata={"description": "heat-map metric"})


class JobErrorSchema(Schema):
    code = fields.String()
    message = fields.String()
    details = fields.Raw()


class JobSchema(Schema):
    id = fields.String()
    kind = fields.String()
    status = fields.String(metadata={"description": "queued | running | succeeded | failed | cancelled"})
    progress = fields.Float(metadata={"description": "0..1"})
    params = fields.Raw()
    result = fields.Raw(allow_none=True, metadata={"description": "metrics, trades, equity/drawdown series"})
    error = fields.Nested(JobErrorSchema, allow_none=True)
    cancel_requested = fields.Boolean()
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


class JobSummarySchema(JobSchema):
    class Meta:
        exclude = ("result", "params")


class JobListQuerySchema(ListQuerySchema):
    kind = fields.String(load_default=None, validate=validate.OneOf(["backtest", "sweep", "portfolio"]))


# --------------------------------------------------------------------------- portfolio backtests

MAX_PORTFOLIO_SYMBOLS = 50


class PortfolioSymbolSchema(Schema):
    symbol = fields.String(
        required=True, validate=[validate.Length(min=1, max=64), validate.Regexp(r".*\S", error="Not blank.")]
    )
    weight = fields.Float(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=-1.0, max=1.0),
        metadata={
            "description": "weights mode: target fraction of equity (negative = short, needs long_only "
            "false); signals mode: optional fixed fraction of equity per entry (default: equal slices)"
        },
    )
    strategy = fields.String(load_default=None, metadata={"description": "signals mode: a signal strategy"})
    params = fields.Dict(load_default=dict, metadata={"description": "signals mode: the strategy's params"})


class PortfolioDataSchema(Schema):
    interval = fields.String(required=True, validate=validate.OneOf(INTERVALS))
    start = fields.AwareDateTime(required=True, default_timezone=None)
    end = fields.AwareDateTime(required=True, default_timezone=None)


class ScheduleRowSchema(Schema):
    time = fields.AwareDateTime(
        required=True,
        default_timezone=None,
        metadata={"description": "decided on the close of the first bar at or after this time"},
    )
    weights = fields.Dict(
        keys=fields.String(), values=fields.Float(), required=True, metadata={"example": {"RELIANCE": 0.5}}
    )


class PortfolioRequestSchema(RunSettingsSchema):
    """A multi-asset backtest on stored candles: one cash account, target weights or per-symbol signals."""

    swagger_example = {
        "mode": "weights",
        "symbols": [{"symbol": "RELIANCE", "weight": 0.5}, {"symbol": "TCS", "weight": 0.45}],
        "data": {"interval": "1d", "start": "2025-01-01T00:00:00Z", "end": "2025-06-30T00:00:00Z"},
        "rebalance": "monthly",
        "cash": "1000000",
        "costs": {"model": "charges", "product": "D"},
    }

    mode = fields.String(
        required=True,
        validate=validate.OneOf(["weights", "signals"]),
        metadata={"description": "weights: rebalance to target weights; signals: a strategy per symbol"},
    )
    symbols = fields.List(
        fields.Nested(PortfolioSymbolSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_PORTFOLIO_SYMBOLS),
    )
    data = fields.Nested(
        PortfolioDataSchema, required=True, metadata={"description": "candle store range, for every symbol"}
    )
    rebalance = fields.String(
        load_default="once",
        validate=validate.OneOf([*REBALANCE_CHOICES, "bars"]),
        metadata={
            "description": "weights mode: once, weekly, monthly, quarterly, or every rebalance_bars bars"
        },
    )
    rebalance_bars = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(min=1)
    )
    schedule = fields.List(
        fields.Nested(ScheduleRowSchema),
        load_default=None,
        validate=validate.Length(min=1, max=10_000),
        metadata={
            "description": "weights mode: dated target weights instead of symbols[].weight + rebalance"
        },
    )

    @validates_schema
    def _consistent(self, data, **_kwargs):
        rows = data.get("symbols") or []
        names = [r["symbol"].strip().upper() for r in rows]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValidationError(f"Duplicate symbol(s): {', '.join(dupes)}.", "symbols")
        allow_short = not data.get("long_only", True)
        errors: dict = {}
        if data.get("mode") == "signals":
            for i, r in enumerate(rows):
                if not r.get("strategy"):
                    errors[i] = {"strategy": ["Required in signals mode."]}
            if data.get("schedule") is not None:
                raise ValidationError("A schedule is for mode 'weights'.", "schedule")
            if errors:
                raise ValidationError(errors, "symbols")
            sizing = {n: r["weight"] for n, r in zip(names, rows, strict=True) if r.get("weight") is not None}
            self._weights(names, sizing, False, "symbols")
            return
        for i, r in enumerate(rows):
            if r.get("strategy"):
                errors[i] = {"strategy": ["Strategies are for mode 'signals'."]}
            elif data.get("schedule") is None and r.get("weight") is None:
                errors[i] = {"weight": ["Required in weights mode (or give a schedule)."]}
            elif data.get("schedule") is not None and r.get("weight") is not None:
                errors[i] = {"weight": ["Give weights in the schedule or here, not both."]}
        if errors:
            raise ValidationError(errors, "symbols")
        if data.get("rebalance") == "bars" and data.get("rebalance_bars") is None:
            raise ValidationError("Required when rebalance is 'bars'.", "rebalance_bars")
        if data.get("schedule") is not None:
            end = (data.get("data") or {}).get("end")
            for k, row in enumerate(data["schedule"]):
                if k and not row["time"] > data["schedule"][k - 1]["time"]:
                    raise ValidationError({k: {"time": ["Not after the previous row."]}}, "schedule")
                if end is not None and row["time"] > end:
                    raise ValidationError({k: {"time": ["After data.end."]}}, "schedule")
                weights = {str(s).strip().upper(): w for s, w in row["weights"].items()}
                try:
                    validate_weights(names, weights, allow_short=allow_short)
                except ValidationFailed as exc:
                    raise ValidationError({k: exc.details}, "schedule") from None
        else:
            self._weights(
                names, {n: r["weight"] for n, r in zip(names, rows, strict=True)}, allow_short, "symbols"
            )

    @staticmethod
    def _weights(names, weights, allow_short, field):
        try:
            validate_weights(names, weights, allow_short=allow_short)
        except ValidationFailed as exc:
            raise ValidationError(exc.details["weights"], field) from None
