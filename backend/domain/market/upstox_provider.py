"""Upstox REST market data (read-only), reproducing the documented request/response shapes:

* full quotes   GET /v2/market-quote/quotes?instrument_key=K1,K2   (<= 500 keys per call)
* LTP           GET /v3/market-quote/ltp?instrument_key=K1,K2      (<= 500 keys per call)
* candles       GET /v3/historical-candle/{key}/{unit}/{interval}/{to_date}/{from_date}
                GET /v3/historical-candle/intraday/{key}/{unit}/{interval}   (today)
* option chain  GET /v2/option/chain?instrument_key=&expiry_date=YYYY-MM-DD
* expiries      GET /v2/option/contract?instrument_key=                (distinct ``expiry``)

Errors come back as ``{"status": "error", "errors": [{"errorCode", "message", ...}]}`` and are
mapped to domain errors: 401 -> BrokerTokenExpired, 429 -> RateLimited, 5xx / connection
failures / timeouts -> ServiceUnavailable, other 4xx -> ValidationFailed (Upstox's message).
Every HTTP call goes through ``call_wrapper`` so a circuit breaker / retry can be plugged in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import requests

from backend.domain.errors import (
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)
from backend.domain.market.instruments import Instrument, lot_size_for
from backend.domain.market.provider import IST, MarketDataProvider, daily_bar_ts, unique, validate_range
from backend.domain.market.types import Candle, Quote, Tick
from backend.domain.options.chain import ChainRow, OptionChain, OptionLeg
from backend.domain.upstox_http import dec, handle_response, observed

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_BASE_URL = "https://api.upstox.com"
MAX_KEYS_PER_CALL = 500  # documented limit of the quote and LTP endpoints
# Upstox v3 candle (unit, interval) for each of our intervals.
CANDLE_UNITS: dict[str, tuple[str, str]] = {
    "1m": ("minutes", "1"),
    "5m": ("minutes", "5"),
    "15m": ("minutes", "15"),
    "1h": ("hours", "1"),
    "1d": ("days", "1"),
}


class InstrumentLookup(Protocol):
    """What the provider needs to translate symbols (InstrumentRegistry satisfies it)."""

    def by_symbol(self, symbol: str) -> Instrument: ...

    def by_key(self, instrument_key: str) -> Instrument | None: ...


def _direct(fn: Callable[[], T]) -> T:
    return fn()


class UpstoxProvider(MarketDataProvider):
    name = "upstox"

    def __init__(
        self,
        token_provider: Callable[[], str] | None = None,
        instruments: InstrumentLookup | None = None,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | tuple[float, float] = (3.05, 10.0),
        session: requests.Session | None = None,
        call_wrapper: Callable[[Callable[[], Any]], Any] | None = None,
        max_keys_per_call: int = MAX_KEYS_PER_CALL,
        clock: Callable[[], datetime] | None = None,
        **_unused: object,
    ):
        if token_provider is None or instruments is None:
            raise ValidationFailed("the upstox provider needs token_provider and instruments")
        self.token_provider = token_provider
        self.instruments = instruments
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        self.call_wrapper = call_wrapper or _direct
        self.max_keys = max(1, int(max_keys_per_call))
        self.clock = clock or (lambda: datetime.now(UTC))
        self._last_cum: dict[str, int] = {}

    # ------------------------------------------------------------------ HTTP

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        """GET ``path`` and return the ``data`` member of a success body."""
        url = f"{self.base_url}{path}"

        def call() -> Any:
            headers = {"Accept": "application/json", "Authorization": f"Bearer {self.token_provider()}"}
            try:
                resp = self.session.get(url, params=params, headers=headers, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise ServiceUnavailable(f"Upstox unreachable: {type(exc).__name__}") from exc
            except requests.RequestException as exc:
                raise ServiceUnavailable(f"Upstox request failed: {type(exc).__name__}") from exc
            return handle_response(resp)

        return self.call_wrapper(observed("market_data", "GET", path, call))

    def _key(self, symbol: str) -> Instrument:
        return self.instruments.by_symbol(symbol)

    def _symbol_for(self, key: str, requested: dict[str, str]) -> str | None:
        if key in requested:
            return requested[key]
        ins = self.instruments.by_key(key)
        return ins.trading_symbol if ins else None

    def _batched(self, path: str, symbols: list[str]) -> dict[str, tuple[str, dict]]:
        """One call per ``max_keys`` symbols; returns {symbol: (instrument_key, payload)}."""
        wanted = {self._key(s).instrument_key: s for s in unique(symbols)}
        keys = list(wanted)
        out: dict[str, tuple[str, dict]] = {}
        for i in range(0, len(keys), self.max_keys):
            chunk = keys[i : i + self.max_keys]
            data = self._get(path, {"instrument_key": ",".join(chunk)}) or {}
            # Response keys are "NSE_EQ:NHPC"; the instrument key is in ``instrument_token``.
            for payload in data.values():
                key = payload.get("instrument_token", "")
                sym = self._symbol_for(key, wanted)
                if sym is not None:
                    out[sym] = (key, payload)
        return out

    # ------------------------------------------------------------------ quotes

    def quotes(self, symbols: list[str]) -> dict[str, Quote]:
        out: dict[str, Quote] = {}
        for sym, (key, q) in self._batched("/v2/market-quote/quotes", symbols).items():
            ltp = dec(q.get("last_price"))
            ohlc = q.get("ohlc") or {}
            depth = q.get("depth") or {}
            bid = _best(depth.get("buy"), ltp)
            ask = _best(depth.get("sell"), ltp)
            net = q.get("net_change")
            prev_close = ltp - dec(net) if net is not None else dec(ohlc.get("close"))
            out[sym] = Quote(
                symbol=sym,
                ltp=ltp,
                bid=bid,
                ask=ask,
                open=dec(ohlc.get("open")),
                high=dec(ohlc.get("high")),
                low=dec(ohlc.get("low")),
                close=prev_close,
                volume=int(q.get("volume") or 0),
                ts=_parse_ts(q.get("timestamp")) or self.clock(),
                instrument_key=key,
                oi=int(q.get("oi") or 0),
            )
        return out

    def ltp(self, symbols: list[str]) -> dict[str, Decimal]:
        return {
            sym: dec(p.get("last_price"))
            for sym, (_key, p) in self._batched("/v3/market-quote/ltp", symbols).items()
        }

    def tick(self, symbols: list[str], now: datetime) -> list[Tick]:
        """Polls full quotes (one call for all symbols); tick volume is the change in the
        day's cumulative volume since the previous poll."""
        out: list[Tick] = []
        for sym, q in self.quotes(symbols).items():
            prev = self._last_cum.get(sym)
            self._last_cum[sym] = q.volume
            vol = max(q.volume - prev, 0) if prev is not None else 0
            out.append(Tick(sym, q.ltp, q.bid, q.ask, vol, now, q.volume))
        return out

    # ------------------------------------------------------------------ candles

    def candles(self, symbol: str, interval: str, start: datetime, end: datetime) -> list[Candle]:
        validate_range(interval, start, end)
        key = quote(self._key(symbol).instrument_key, safe="")
        unit, step = CANDLE_UNITS[interval]
        today = self.clock().astimezone(IST).date()
        first, last = start.astimezone(IST).date(), end.astimezone(IST).date()
        rows: list[list] = []
        hist_last = min(last, today - timedelta(days=1))
        if first <= hist_last:
            path = f"/v3/historical-candle/{key}/{unit}/{step}/{hist_last.isoformat()}/{first.isoformat()}"
            rows += (self._get(path) or {}).get("candles") or []
        if first <= today <= last:
            path = f"/v3/historical-candle/intraday/{key}/{unit}/{step}"
            rows += (self._get(path) or {}).get("candles") or []
        bars: dict[datetime, Candle] = {}
        for row in rows:
            c = _candle_row(row, interval)
            if start <= c.ts <= end:
                bars[c.ts] = c
        return [bars[t] for t in sorted(bars)]  # Upstox returns newest first

    # ------------------------------------------------------------------ options

    def option_chain(self, underlying: str, expiry: date) -> OptionChain:
        ins = self._key(underlying)
        data = self._get(
            "/v2/option/chain", {"instrument_key": ins.instrument_key, "expiry_date": expiry.isoformat()}
        )
        if not data:
            raise NotFound(f"no {underlying} option chain for expiry {expiry}")
        rows = []
        spot = Decimal(0)
        for item in data:
            spot = dec(item.get("underlying_spot_price"))
            rows.append(
                ChainRow(
                    strike=dec(item.get("strike_price")),
                    call=_leg(item.get("call_options")),
                    put=_leg(item.get("put_options")),
                )
            )
        # the lot of this expiry's series (lots change by series), else the index's current one
        lot = lot_size_for(ins.trading_symbol, expiry) or (
            ins.lot_size if ins.instrument_type == "INDEX" else 1
        )
        return OptionChain(
            underlying=ins.trading_symbol, expiry=expiry, spot=spot, rows=tuple(rows), lot_size=lot
        )

    def expiries(self, underlying: str) -> list[date]:
        ins = self._key(underlying)
        data = self._get("/v2/option/contract", {"instrument_key": ins.instrument_key}) or []
        out = set()
        for item in data:
            exp = item.get("expiry")
            if exp:
                out.add(date.fromisoformat(str(exp)[:10]))
        return sorted(out)


# ---------------------------------------------------------------------- response mapping


def _best(levels: Any, fallback: Decimal) -> Decimal:
    if isinstance(levels, list):
        for lvl in levels:
            price = dec(lvl.get("price"))
            if price > 0:
                return price
    return fallback


def _parse_ts(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value)).astimezone(UTC)
    except ValueError:
        return None


def _candle_row(row: list, interval: str) -> Candle:
    try:
        ts = datetime.fromisoformat(str(row[0]))
        if interval == "1d":
            ts = daily_bar_ts(ts.astimezone(IST).date())
        return Candle(
            ts=ts.astimezone(UTC),
            open=dec(row[1]),
            high=dec(row[2]),
            low=dec(row[3]),
            close=dec(row[4]),
            volume=int(row[5]),
            oi=int(row[6]) if len(row) > 6 and row[6] is not None else 0,
        )
    except (IndexError, TypeError, ValueError) as exc:
        raise ServiceUnavailable(f"Upstox returned a malformed candle: {row!r}") from exc


def _leg(item: Any) -> OptionLeg | None:
    if not isinstance(item, dict):
        return None
    md = item.get("market_data") or {}
    g = item.get("option_greeks") or {}
    return OptionLeg(
        ltp=dec(md.get("ltp")),
        bid=dec(md.get("bid_price")),
        ask=dec(md.get("ask_price")),
        iv=float(g.get("iv") or 0.0) / 100.0,  # Upstox sends percent
        delta=float(g.get("delta") or 0.0),
        gamma=float(g.get("gamma") or 0.0),
        theta=float(g.get("theta") or 0.0),
        vega=float(g.get("vega") or 0.0),
        oi=int(md.get("oi") or 0),
        volume=int(md.get("volume") or 0),
        instrument_key=item.get("instrument_key") or "",
    )
