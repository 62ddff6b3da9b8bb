"""A small Flask imitation of the Upstox REST API for tests (market data for now).

``create_stub_app(state)`` returns the app; ``state`` records every request received and lets a
test force responses. To add order / OAuth endpoints later, add a blueprint factory next to
``_market_blueprint`` and register it in ``create_stub_app``; reuse ``error_response`` and
``state.check_auth`` so errors keep Upstox's documented shape.

Response bodies follow Upstox's documentation: success ``{"status": "success", "data": ...}``,
errors ``{"status": "error", "errors": [{"errorCode", "message", "propertyPath",
"invalidValue", "error_code", "property_path", "invalid_value"}]}``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, jsonify, request

IST = ZoneInfo("Asia/Kolkata")
MAX_KEYS = 500

# Documented error codes reproduced by the stub.
INVALID_TOKEN = (401, "UDAPI100050", "Invalid token used to access API")
TOO_MANY_REQUESTS = (429, "UDAPI10005", "Too Many Request Sent")
SERVER_ERROR = (500, "UDAPI100500", "Something went wrong... please contact us")
INVALID_KEY = (400, "UDAPI1087", "Invalid Instrument key")
KEY_LIMIT = (400, "UDAPI100043", "Maximum instrument key limit exceeded")


@dataclass
class Recorded:
    method: str
    path: str
    args: dict[str, str]
    headers: dict[str, str]


@dataclass
class StubInstrument:
    instrument_key: str
    symbol: str  # trading symbol, used in response keys "NSE_EQ:SYMBOL"
    ltp: float
    prev_close: float
    volume: int = 1_000_000
    oi: int = 0


@dataclass
class StubState:
    """Mutable state shared by the stub app and the test."""

    access_token: str = "test-token"
    instruments: dict[str, StubInstrument] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    forced: list[tuple[int, str, str]] = field(default_factory=list)  # next responses to fail
    retry_after: int | None = None
    today: date = field(default_factory=lambda: datetime.now(IST).date())
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self, instrument_key: str, symbol: str, ltp: float, prev_close: float | None = None, **kw: Any
    ) -> None:
        self.instruments[instrument_key] = StubInstrument(
            instrument_key, symbol, ltp, prev_close if prev_close is not None else ltp, **kw
        )

    def fail_next(self, error: tuple[int, str, str], times: int = 1) -> None:
        self.forced.extend([error] * times)

    def calls(self, path_prefix: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.path.startswith(path_prefix)]

    def check_auth(self):
        """Record the request; return an error response if forced or unauthorised, else None."""
        with self.lock:
            self.requests.append(
                Recorded(request.method, request.path, request.args.to_dict(), dict(request.headers))
            )
            forced = self.forced.pop(0) if self.forced else None
        if forced:
            return error_response(*forced, retry_after=self.retry_after)
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return error_response(*INVALID_TOKEN)
        return None


def error_response(
    status: int, code: str, message: str, retry_after: int | None = None, prop: str | None = None
):
    body = {
        "status": "error",
        "errors": [
            {
                "errorCode": code,
                "message": message,
                "propertyPath": prop,
                "invalidValue": None,
                "error_code": code,
                "property_path": prop,
                "invalid_value": None,
            }
        ],
    }
    resp = jsonify(body)
    resp.status_code = status
    if retry_after is not None and status == 429:
        resp.headers["Retry-After"] = str(retry_after)
    return resp


def ok(data: Any):
    return jsonify({"status": "success", "data": data})


def _keys(state: StubState):
    raw = request.args.get("instrument_key", "")
    keys = [k for k in raw.split(",") if k]
    if not keys:
        return None, error_response(400, "UDAPI1009", "instrument_key is required", prop="instrument_key")
    if len(keys) > MAX_KEYS:
        return None, error_response(*KEY_LIMIT, prop="instrument_key")
    unknown = [k for k in keys if k not in state.instruments]
    if unknown:
        return None, error_response(*INVALID_KEY, prop="instrument_key")
    return [state.instruments[k] for k in keys], None


def _candles(ins: StubInstrument, start: datetime, count: int, step: timedelta) -> list[list]:
    """Deterministic bars, newest first like Upstox: price walks 0.1 % per bar."""
    rows = []
    price = ins.prev_close
    for i in range(count):
        ts = start + step * i
        o = round(price, 2)
        c = round(price * (1.001 if i % 3 else 0.999), 2)
        rows.append([ts.isoformat(), o, round(max(o, c) + 0.5, 2), round(min(o, c) - 0.5, 2), c, 1000 + i, 0])
        price = c
    return list(reversed(rows))


def _market_blueprint(state: StubState) -> Blueprint:
    bp = Blueprint("upstox_market", __name__)

    @bp.get("/v2/market-quote/quotes")
    def full_quotes():
        if (err := state.check_auth()) is not None:
            return err
        items, err = _keys(state)
        if err is not None:
            return err
        data = {}
        for ins in items:
            data[f"{ins.instrument_key.split('|')[0]}:{ins.symbol}"] = {
                "ohlc": {
                    "open": ins.prev_close,
                    "high": max(ins.ltp, ins.prev_close) + 1,
                    "low": min(ins.ltp, ins.prev_close) - 1,
                    "close": ins.ltp,
                },
                "depth": {
                    "buy": [{"quantity": 100, "price": round(ins.ltp - 0.05, 2), "orders": 3}]
                    + [{"quantity": 0, "price": 0, "orders": 0}] * 4,
                    "sell": [{"quantity": 80, "price": round(ins.ltp + 0.05, 2), "orders": 2}]
                    + [{"quantity": 0, "price": 0, "orders": 0}] * 4,
                },
                "timestamp": "2023-10-19T05:21:51.099+05:30",
                "instrument_token": ins.instrument_key,
                "symbol": ins.symbol,
                "last_price": ins.ltp,
                "volume": ins.volume,
                "average_price": ins.ltp,
                "oi": ins.oi,
                "net_change": round(ins.ltp - ins.prev_close, 2),
                "total_buy_quantity": 100,
                "total_sell_quantity": 80,
                "lower_circuit_limit": round(ins.prev_close * 0.8, 2),
                "upper_circuit_limit": round(ins.prev_close * 1.2, 2),
                "last_trade_time": "1697624972130",
                "oi_day_high": 0,
                "oi_day_low": 0,
            }
        return ok(data)

    @bp.get("/v3/market-quote/ltp")
    def ltp_v3():
        if (err := state.check_auth()) is not None:
            return err
        items, err = _keys(state)
        if err is not None:
            return err
        return ok(
            {
                f"{i.instrument_key.split('|')[0]}:{i.symbol}": {
                    "last_price": i.ltp,
                    "instrument_token": i.instrument_key,
                    "ltq": 75,
                    "volume": i.volume,
                    "cp": i.prev_close,
                }
                for i in items
            }
        )

    _UNITS = {"minutes": timedelta(minutes=1), "hours": timedelta(hours=1), "days": timedelta(days=1)}

    @bp.get("/v3/historical-candle/<path:key>/<unit>/<int:interval>/<to_date>/<from_date>")
    def historical(key: str, unit: str, interval: int, to_date: str, from_date: str):
        if (err := state.check_auth()) is not None:
            return err
        if key not in state.instruments or unit not in _UNITS:
            return error_response(*INVALID_KEY, prop="instrument_key")
        try:
            first, last = date.fromisoformat(from_date), date.fromisoformat(to_date)
        except ValueError:
            return error_response(400, "UDAPI1022", "Invalid date format", prop="to_date")
        ins = state.instruments[key]
        if unit == "days":
            days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
            days = [d for d in days if d.weekday() < 5]
            rows = _candles(ins, datetime(2000, 1, 1, tzinfo=IST), len(days), timedelta(days=1))
            rows.reverse()  # oldest first while re-stamping
            out = [
                [datetime(d.year, d.month, d.day, tzinfo=IST).isoformat(), *r[1:]] for d, r in zip(days, rows)
            ]
            return ok({"candles": list(reversed(out))})
        step = _UNITS[unit] * interval
        out = []
        d = first
        while d <= last:
            if d.weekday() < 5:
                open_ = datetime(d.year, d.month, d.day, 9, 15, tzinfo=IST)
                out = _candles(ins, open_, int(timedelta(minutes=375) / step), step) + out
            d += timedelta(days=1)
        return ok({"candles": out})

    @bp.get("/v3/historical-candle/intraday/<path:key>/<unit>/<int:interval>")
    def intraday(key: str, unit: str, interval: int):
        if (err := state.check_auth()) is not None:
            return err
        if key not in state.instruments or unit not in _UNITS:
            return error_response(*INVALID_KEY, prop="instrument_key")
        d = state.today
        open_ = datetime(d.year, d.month, d.day, 9, 15, tzinfo=IST)
        if unit == "days":
            return ok(
                {
                    "candles": _candles(
                        state.instruments[key],
                        datetime(d.year, d.month, d.day, tzinfo=IST),
                        1,
                        timedelta(days=1),
                    )
                }
            )
        step = _UNITS[unit] * interval
        return ok({"candles": _candles(state.instruments[key], open_, 6, step)})

    @bp.get("/v2/option/chain")
    def option_chain():
        if (err := state.check_auth()) is not None:
            return err
        key = request.args.get("instrument_key", "")
        expiry = request.args.get("expiry_date", "")
        if key not in state.instruments:
            return error_response(*INVALID_KEY, prop="instrument_key")
        spot = state.instruments[key].ltp
        rows = []
        for n, strike in enumerate((spot - 100, spot, spot + 100)):
            rows.append(
                {
                    "expiry": expiry,
                    "pcr": 1.2,
                    "strike_price": strike,
                    "underlying_key": key,
                    "underlying_spot_price": spot,
                    "call_options": {
                        "instrument_key": f"NSE_FO|{1000 + 2 * n}",
                        "market_data": {
                            "ltp": max(spot - strike, 0) + 50,
                            "volume": 1200,
                            "oi": 1000 * (n + 1),
                            "close_price": 60,
                            "bid_price": 49.5,
                            "bid_qty": 75,
                            "ask_price": 50.5,
                            "ask_qty": 75,
                            "prev_oi": 900,
                        },
                        "option_greeks": {
                            "vega": 12.1,
                            "theta": -9.5,
                            "gamma": 0.0011,
                            "delta": 0.55 - 0.1 * n,
                            "iv": 14.2,
                            "pop": 45.0,
                        },
                    },
                    "put_options": {
                        "instrument_key": f"NSE_FO|{1001 + 2 * n}",
                        "market_data": {
                            "ltp": max(strike - spot, 0) + 45,
                            "volume": 1500,
                            "oi": 1200 * (3 - n),
                            "close_price": 50,
                            "bid_price": 44.5,
                            "bid_qty": 75,
                            "ask_price": 45.5,
                            "ask_qty": 75,
                            "prev_oi": 1000,
                        },
                        "option_greeks": {
                            "vega": 12.0,
                            "theta": -8.7,
                            "gamma": 0.0011,
                            "delta": -0.45 - 0.1 * n,
                            "iv": 15.8,
                            "pop": 40.0,
                        },
                    },
                }
            )
        return ok(rows)

    @bp.get("/v2/option/contract")
    def option_contracts():
        if (err := state.check_auth()) is not None:
            return err
        key = request.args.get("instrument_key", "")
        if key not in state.instruments:
            return error_response(*INVALID_KEY, prop="instrument_key")
        expiries = [state.today + timedelta(days=d) for d in (14, 7, 7, 35)]
        sym = state.instruments[key].symbol
        return ok(
            [
                {
                    "name": state.instruments[key].symbol,
                    "segment": "NSE_FO",
                    "exchange": "NSE",
                    "expiry": e.isoformat(),
                    "instrument_key": f"NSE_FO|{5000 + i}",
                    "exchange_token": str(5000 + i),
                    "trading_symbol": f"{sym} 24500 CE {e.strftime('%d %b %y').upper()}",
                    "tick_size": 5,
                    "lot_size": 75,
                    "instrument_type": "CE",
                    "freeze_quantity": 1800,
                    "underlying_key": key,
                    "underlying_type": "INDEX",
                    "underlying_symbol": state.instruments[key].symbol,
                    "strike_price": 24500,
                    "minimum_lot": 75,
                    "weekly": True,
                }
                for i, e in enumerate(expiries)
            ]
        )

    return bp


def create_stub_app(state: StubState | None = None) -> Flask:
    state = state or StubState()
    app = Flask("upstox_stub")
    app.config["STUB_STATE"] = state
    app.register_blueprint(_market_blueprint(state))
    from tests.stubs.upstox_orders_stub import orders_blueprint

    app.register_blueprint(orders_blueprint(state))
    return app
