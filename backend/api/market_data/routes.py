"""The market-data namespace: quotes, LTP, candles, option chains, instruments, market status,
indicators, and the TradingView UDF datafeed under ``/udf``.

The UDF endpoints speak the UDF protocol (their own JSON shapes, ``{"s": "error", "errmsg"}`` for
errors) instead of our envelope; they still require a JWT or API key like every endpoint.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from flask import make_response, request
from flask_restx import Namespace, Resource
from flask_restx import fields as restx_fields
from marshmallow import ValidationError

from backend.api.common import decode_cursor, load, page_limit, raw_response, read_only, responds, use_schema
from backend.api.market_data.schemas import (
    UDF_RESOLUTIONS,
    CandlesSchema,
    ChainAnalyticsSchema,
    ExpiryQuerySchema,
    IndicatorQuerySchema,
    IndicatorSchema,
    InstrumentQuerySchema,
    InstrumentSchema,
    LtpSchema,
    MarketStatusSchema,
    OptionChainSchema,
    QuotesSchema,
    RangeQuerySchema,
    SymbolsBodySchema,
    SymbolsQuerySchema,
    UdfConfigSchema,
    UdfHistoryQuerySchema,
    UdfHistorySchema,
    UdfSearchQuerySchema,
    UdfSearchResultSchema,
    UdfSymbolInfoSchema,
    UdfSymbolQuerySchema,
    resolve_range,
)
from backend.api.security import require_scope
from backend.domain.errors import DomainError, NotFound
from backend.domain.market.calendar import IST
from backend.domain.market.provider import MAX_RANGE, interval_delta
from backend.services import market_data as md

ns = Namespace(
    "market-data", description="Quotes, candles, option chains, instruments and the UDF feed", validate=False
)


@ns.route("/quotes")
class Quotes(Resource):
    @require_scope("read")
    @use_schema(SymbolsQuerySchema, location="query", arg="query")
    @responds(QuotesSchema)
    def get(self, query):
        """Full quotes for up to 500 symbols (one provider call for the cache misses)."""
        return {"items": md.quotes(query["symbols"])}

    @require_scope("read")
    @read_only
    @use_schema(SymbolsBodySchema)
    @responds(QuotesSchema)
    def post(self, data):
        """The same as GET with the symbols in a JSON body, for lists too long for a URL. Reads only."""
        return {"items": md.quotes(data["symbols"])}


@ns.route("/ltp")
class Ltp(Resource):
    @require_scope("read")
    @use_schema(SymbolsQuerySchema, location="query", arg="query")
    @responds(LtpSchema)
    def get(self, query):
        """Last traded prices for up to 500 symbols."""
        prices = md.ltp(query["symbols"])
        return {"items": [{"symbol": s, "ltp": p} for s, p in prices.items()]}

    @require_scope("read")
    @read_only
    @use_schema(SymbolsBodySchema)
    @responds(LtpSchema)
    def post(self, data):
        """The same as GET with the symbols in a JSON body, for lists too long for a URL. Reads only."""
        prices = md.ltp(data["symbols"])
        return {"items": [{"symbol": s, "ltp": p} for s, p in prices.items()]}


@ns.route("/candles/<string:symbol>")
class Candles(Resource):
    @require_scope("read")
    @use_schema(RangeQuerySchema, location="query", arg="query")
    @responds(CandlesSchema)
    def get(self, symbol, query):
        """OHLCV bars. Longest range: 31 days for 1m/5m/15m, 92 for 1h, 3653 for 1d."""
        start, end = resolve_range(query)
        md.check_range(query["interval"], start, end)
        bars = md.candles(symbol, query["interval"], start, end)
        ins = md.get_instrument(symbol)
        return {
            "symbol": ins.trading_symbol,
            "interval": query["interval"],
            "start": start,
            "end": end,
            "candles": bars,
        }


@ns.route("/option-chain/<string:underlying>")
class OptionChainResource(Resource):
    @require_scope("read")
    @use_schema(ExpiryQuerySchema, location="query", arg="query")
    @responds(OptionChainSchema)
    def get(self, underlying, query):
        """Option chain with greeks and IV per strike (default expiry: the nearest)."""
        chain, stats = md.chain_analytics(underlying, query["expiry"])
        return {
            "underlying": chain.underlying,
            "expiry": chain.expiry,
            "spot": chain.spot,
            "lot_size": chain.lot_size,
            "pcr": stats.pcr_oi,
            "expiries": md.expiries(underlying),
            "rows": chain.rows,
        }


@ns.route("/option-chain/<string:underlying>/analytics")
class OptionChainAnalytics(Resource):
    @require_scope("read")
    @use_schema(ExpiryQuerySchema, location="query", arg="query")
    @responds(ChainAnalyticsSchema)
    def get(self, underlying, query):
        """PCR by open interest and by volume, max pain and ATM IV."""
        chain, stats = md.chain_analytics(underlying, query["expiry"])
        return {
            "underlying": chain.underlying,
            "expiry": chain.expiry,
            "spot": chain.spot,
            "pcr_oi": stats.pcr_oi,
            "pcr_volume": stats.pcr_volume,
            "max_pain": stats.max_pain,
            "atm_strike": stats.atm_strike,
            "atm_iv": stats.atm_iv,
            "total_call_oi": stats.total_call_oi,
            "total_put_oi": stats.total_put_oi,
        }


@ns.route("/instruments")
class Instruments(Resource):
    @require_scope("read")
    @use_schema(InstrumentQuerySchema, location="query", arg="query")
    @responds(InstrumentSchema, paged=True)
    def get(self, query):
        """Search instruments by trading-symbol or name prefix, optionally by type."""
        return md.search_instruments(
            query["q"], query["type"], page_limit(query["limit"]), decode_cursor(query["cursor"])
        )


@ns.route("/market-status")
class MarketStatusResource(Resource):
    @require_scope("read")
    @responds(MarketStatusSchema)
    def get(self):
        """Whether NSE is open now (exchange hours and configured holidays, Asia/Kolkata)."""
        now = datetime.now(UTC)
        st = md.market_status(now)
        return {
            "exchange": "NSE",
            "timezone": "Asia/Kolkata",
            "is_open": st.is_open,
            "reason": st.reason,
            "now": now.astimezone(IST),
            "next_open": st.next_open,
            "next_close": st.next_close,
        }


@ns.route("/indicators/<string:symbol>")
class Indicators(Resource):
    @require_scope("read")
    @use_schema(IndicatorQuerySchema, location="query", arg="query")
    @responds(IndicatorSchema)
    def get(self, symbol, query):
        """sma|ema|rsi|atr (period), macd (fast, slow, signal), bollinger (period, k), vwap."""
        start, end = resolve_range(query)
        md.check_range(query["interval"], start, end)
        params = {k: query.get(k) for k in ("period", "fast", "slow", "signal", "k")}
        return md.indicator(symbol, query["name"], query["interval"], start, end, params)


# --------------------------------------------------------------------------- TradingView UDF

UDF_SUPPORTED = ["1", "5", "15", "60", "1D"]
UDF_TYPES = {"EQ": "stock", "INDEX": "index", "FUT": "futures", "CE": "option", "PE": "option"}
UDF_TYPE_FILTER = {v: k for k, v in UDF_TYPES.items() if k not in ("PE",)}


def _udf_error(message: str):
    return {"s": "error", "errmsg": message}


def _udf_load(schema_cls):
    raw = {k: v for k, v in request.args.items()}
    try:
        return schema_cls().load(raw), None
    except ValidationError as exc:
        parts = [
            f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in exc.messages.items()
        ]
        return None, _udf_error("; ".join(parts))


def _udf_symbol(raw: str) -> str:
    # The charting library may send "EXCHANGE:SYMBOL".
    return raw.split(":", 1)[1] if ":" in raw else raw


def _pricescale(tick: Decimal) -> tuple[int, int]:
    exponent = tick.normalize().as_tuple().exponent
    decimals = max(0, -exponent) if isinstance(exponent, int) else 2
    pricescale = 10**decimals
    return int(tick * pricescale), pricescale


def udf_symbol_info(ins) -> dict:
    minmov, pricescale = _pricescale(ins.tick_size)
    holidays = sorted(md.calendar().holidays)
    return {
        "name": ins.trading_symbol,
        "ticker": ins.trading_symbol,
        "full_name": f"{ins.exchange}:{ins.trading_symbol}",
        "description": ins.name,
        "type": UDF_TYPES.get(ins.instrument_type, "stock"),
        "session": "0915-1530",
        "session_holidays": ",".join(d.strftime("%Y%m%d") for d in holidays),
        "timezone": "Asia/Kolkata",
        "exchange": ins.exchange,
        "listed_exchange": ins.exchange,
        "exchange-traded": ins.exchange,
        "exchange-listed": ins.exchange,
        "minmov": minmov,
        "minmov2": 0,
        "pointvalue": 1,
        "pricescale": pricescale,
        "has_intraday": ins.instrument_type in ("EQ", "INDEX"),
        "has_daily": True,
        "has_weekly_and_monthly": False,
        "has_no_volume": ins.instrument_type == "INDEX",
        "visible_plots_set": "c" if ins.instrument_type == "INDEX" else "ohlcv",
        "supported_resolutions": UDF_SUPPORTED,
        "intraday_multipliers": ["1", "5", "15", "60"],
        "volume_precision": 0,
        "data_status": "streaming",
        "currency_code": "INR",
    }


@ns.route("/udf/config")
class UdfConfig(Resource):
    @require_scope("read")
    @responds(UdfConfigSchema, passthrough=True)
    def get(self):
        """UDF datafeed configuration."""
        return {
            "supported_resolutions": UDF_SUPPORTED,
            "supports_search": True,
            "supports_group_request": False,
            "supports_marks": False,
            "supports_timescale_marks": False,
            "supports_time": True,
            "exchanges": [
                {"value": "", "name": "All Exchanges", "desc": ""},
                {"value": "NSE", "name": "NSE", "desc": "National Stock Exchange of India"},
            ],
            "symbols_types": [
                {"name": "All types", "value": ""},
                {"name": "Stock", "value": "stock"},
                {"name": "Index", "value": "index"},
                {"name": "Option", "value": "option"},
                {"name": "Futures", "value": "futures"},
            ],
        }


@ns.route("/udf/symbols")
class UdfSymbols(Resource):
    @require_scope("read")
    @ns.doc(params={"symbol": "Trading symbol, optionally EXCHANGE:SYMBOL"})
    @responds(UdfSymbolInfoSchema, passthrough=True)
    def get(self):
        """UDF symbol info."""
        query, err = _udf_load(UdfSymbolQuerySchema)
        if err:
            return err
        ins = md.find_instrument(_udf_symbol(query["symbol"]))
        if ins is None:
            return _udf_error(f"unknown symbol {query['symbol']}")
        return udf_symbol_info(ins)


@ns.route("/udf/search")
class UdfSearch(Resource):
    @require_scope("read")
    @ns.doc(
        params={"query": "Prefix", "type": "stock|index|option|futures", "exchange": "NSE", "limit": "1-100"}
    )
    @responds(UdfSearchResultSchema, many=True, passthrough=True)
    def get(self):
        """UDF symbol search (the protocol answers a list, so bad parameters are a 422 envelope)."""
        raw = {k: v for k, v in request.args.items()}
        query = load(UdfSearchQuerySchema(), raw, "query")
        if query["exchange"] and query["exchange"].upper() != "NSE":
            return []
        itype = UDF_TYPE_FILTER.get(query["type"]) if query["type"] else None
        if query["type"] and itype is None:
            return []
        page = md.search_instruments(query["query"] or None, itype, query["limit"], None)
        items = page.items
        if query["type"] == "option":  # both CE and PE
            page = md.search_instruments(query["query"] or None, "PE", query["limit"], None)
            items = sorted([*items, *page.items], key=lambda r: r.id)[: query["limit"]]
        return [
            {
                "symbol": r.trading_symbol,
                "full_name": f"{r.exchange}:{r.trading_symbol}",
                "description": r.name,
                "exchange": r.exchange,
                "ticker": r.trading_symbol,
                "type": UDF_TYPES.get(r.instrument_type, "stock"),
            }
            for r in items
        ]


@ns.route("/udf/history")
class UdfHistory(Resource):
    @require_scope("read")
    @ns.doc(
        params={
            "symbol": "Trading symbol",
            "resolution": "1|5|15|60|1D",
            "from": "Unix seconds (inclusive)",
            "to": "Unix seconds (inclusive)",
            "countback": "Bars wanted ending at 'to' (takes precedence over 'from')",
        }
    )
    @responds(UdfHistorySchema, passthrough=True)
    def get(self):
        """UDF bars: ``{s: ok, t, o, h, l, c, v}`` or ``{s: no_data, nextTime}``."""
        query, err = _udf_load(UdfHistoryQuerySchema)
        if err:
            return err
        sym = _udf_symbol(query["symbol"])
        if md.find_instrument(sym) is None:
            return _udf_error(f"unknown symbol {query['symbol']}")
        interval = UDF_RESOLUTIONS[query["resolution"]]
        try:
            start = datetime.fromtimestamp(query["from_"], tz=UTC)
            end = datetime.fromtimestamp(query["to"], tz=UTC)
        except (OverflowError, OSError, ValueError):
            return _udf_error("from/to must be Unix seconds")
        if end < start:
            return _udf_error("'to' must not be before 'from'")
        try:
            bars = _udf_bars(sym, interval, start, end, query["countback"])
            if not bars:
                before = md.last_bar_before(sym, interval, start)
                body = {"s": "no_data"}
                if before is not None:
                    body["nextTime"] = int(before.timestamp())
                return body
        except NotFound as exc:
            return _udf_error(exc.message)
        except DomainError as exc:
            return _udf_error(exc.message)
        return {
            "s": "ok",
            "t": [int(b.ts.timestamp()) for b in bars],
            "o": [float(b.open) for b in bars],
            "h": [float(b.high) for b in bars],
            "l": [float(b.low) for b in bars],
            "c": [float(b.close) for b in bars],
            "v": [int(b.volume) for b in bars],
        }


def _udf_bars(sym: str, interval: str, start: datetime, end: datetime, countback: int | None) -> list:
    limit = MAX_RANGE[interval]
    if not countback:
        # The library asks for long daily spans; serve the longest allowed one instead of failing.
        return md.candles(sym, interval, max(start, end - limit), end)
    width = interval_delta(interval)
    # Sessions are 6h15m of 24h and 5 days of 7: ask for ~5x the bare span per step.
    window = min(limit, max(width * countback * (5 if interval != "1d" else 2), timedelta(days=4)))
    bars: list = []
    window_end = end
    for _ in range(12):
        window_start = window_end - window
        chunk = md.candles(sym, interval, window_start, window_end)
        bars = chunk + bars
        if len(bars) >= countback:
            break
        window_end = window_start - timedelta(seconds=1)
    return bars[-countback:]


@ns.route("/udf/time")
class UdfTime(Resource):
    @require_scope("read")
    @raw_response(restx_fields.Integer(example=1767225600), "Unix seconds as plain text", "text/plain")
    def get(self):
        """Server time in Unix seconds (plain text, as the UDF adapter expects)."""
        resp = make_response(str(int(datetime.now(UTC).timestamp())))
        resp.mimetype = "text/plain"
        return resp
