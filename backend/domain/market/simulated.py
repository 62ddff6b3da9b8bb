"""The default, fully offline market: a seeded geometric Brownian motion per instrument.

Determinism is by construction rather than by replaying a stream:

* every daily log-return is a normal drawn from ``blake2b(seed, symbol, date)``, and the
  close of a day is ``base_price * exp(sum of returns between the anchor date and that day)``;
* the session's 1-minute path is a Brownian bridge from the day's open (previous close plus an
  overnight gap) to the day's close, drawn from a generator seeded with
  ``blake2b(seed, symbol, date)``;
* 5m/15m/1h/1d bars are aggregated from those 1-minute bars (buckets start at 09:15 IST).

So a bar depends only on (seed, symbol, interval, its timestamp): overlapping requests agree bar
for bar, every interval agrees with every other, and live ticks (the same path evaluated at the
second, with a pinned sub-minute bridge) continue exactly from the last completed bar's close.
Python's ``hash()`` is never used: it is salted per process.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np

from backend.domain.errors import NotFound, ValidationFailed
from backend.domain.market.calendar import SESSION_MINUTES, NseCalendar
from backend.domain.market.instruments import (
    Instrument,
    InstrumentRegistry,
    generate_future_series,
    generate_option_series,
    seed_instruments,
)
from backend.domain.market.provider import (
    IST,
    MarketDataProvider,
    daily_bar_ts,
    interval_delta,
    unique,
    validate_range,
)
from backend.domain.market.types import Candle, Quote, Tick
from backend.domain.options.chain import ChainRow, OptionChain, OptionLeg
from backend.domain.options.pricing import bs_greeks_array, bs_price_array

TRADING_DAYS_PER_YEAR = 252
SECONDS_PER_YEAR = 365.0 * 86400.0
_INTERVAL_MINUTES = {"1m": 1, "5m": 5, "15m": 15, "1h": 60}
_DAY_CACHE_SIZE = 8192


def _digest(*parts: object) -> bytes:
    return hashlib.blake2b("|".join(str(p) for p in parts).encode(), digest_size=16).digest()


def _seed_int(*parts: object) -> int:
    return int.from_bytes(_digest(*parts)[:8], "big")


def _normal(*parts: object) -> float:
    """A standard normal fully determined by ``parts`` (Box-Muller on a hash)."""
    h = _digest(*parts)
    u1 = (int.from_bytes(h[:8], "big") + 1) / (2**64 + 1)  # in (0, 1): log is finite
    u2 = int.from_bytes(h[8:], "big") / 2**64
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


@dataclass(frozen=True, slots=True)
class _Session:
    """One trading day's 1-minute bars; prices in integer ticks, path in log-price."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    logpath: np.ndarray  # SESSION_MINUTES + 1 points, minute k at 09:15 + k min


class SimulatedProvider(MarketDataProvider):
    """Deterministic simulated NSE market (equities, indices, their options and futures).

    ``drift``/``vol`` are annualised GBM parameters for equities, ``index_vol`` for indices;
    ``vols`` overrides per symbol. The option smile is
    ``iv = atm_vol + skew * m + curvature * m**2`` with ``m = ln(K / F)``; ``atm_vol`` defaults
    to the underlying's own vol. ``clock`` supplies "now" for quotes and chains and bounds
    candles to completed bars. A future is priced at the cost of carry,
    ``spot * (1 + carry_rate * t)`` with ``t`` the years to its expiry's close, so it converges to
    the index at expiry: its final settlement price is the index close, as NSE's is (NSE
    "Settlement Price": index futures settle at the closing price of the underlying index on the
    last trading day).
    """

    name = "simulated"

    def __init__(
        self,
        seed: int | str = 42,
        instruments: InstrumentRegistry | Iterable[Instrument] | None = None,
        holidays: Iterable[date | str] = (),
        drift: float = 0.08,
        vol: float = 0.25,
        index_vol: float = 0.15,
        vols: dict[str, float] | None = None,
        anchor_date: date | str = "2024-01-01",
        history_start: date | str = "2012-01-01",
        rate: float = 0.065,
        carry_rate: float = 0.0525,
        atm_vol: float | None = None,
        skew: float = -0.8,
        curvature: float = 4.0,
        clock: Callable[[], datetime] | None = None,
        strikes_each_side: int = 20,
        off_session_moves: bool = False,
        **_unused: object,
    ):
        self.seed = str(seed)
        self.calendar = NseCalendar(holidays)
        self.clock = clock or (lambda: datetime.now(UTC))
        if isinstance(instruments, InstrumentRegistry):
            self.instruments = instruments
        else:
            self.instruments = InstrumentRegistry(seed_instruments() if instruments is None else instruments)
        self.drift, self.vol, self.index_vol = float(drift), float(vol), float(index_vol)
        self.vols = {k.upper(): float(v) for k, v in (vols or {}).items()}
        self.anchor_date = _as_date(anchor_date)
        self.history_start = _as_date(history_start)
        self.rate, self.skew, self.curvature = float(rate), float(skew), float(curvature)
        self.carry_rate = float(carry_rate)
        self.atm_vol = None if atm_vol is None else float(atm_vol)
        self._days: list[date] = []
        self._day_index: dict[date, int] = {}
        self._logclose: dict[str, np.ndarray] = {}
        self._sessions: OrderedDict[tuple[str, date], _Session] = OrderedDict()
        self.off_session_moves = bool(off_session_moves)
        self._gaps: OrderedDict[tuple[str, date], np.ndarray] = OrderedDict()
        if instruments is None:
            self.list_index_options(strikes_each_side)
            self.list_index_futures()

    def list_index_options(self, strikes_each_side: int = 20) -> None:
        """Add option series of every index, centred on its simulated level now (not on the
        seed's reference price, which the random walk has long left)."""
        now = self.clock()
        today = now.astimezone(IST).date()
        for ins in [i for i in self.instruments if i.instrument_type == "INDEX"]:
            ref = Decimal(str(round(self._spot(ins, now), 2)))
            self.instruments.add(generate_option_series(ins, ref, today, self.calendar, strikes_each_side))

    def list_index_futures(self, count: int = 3) -> None:
        """Add the near, next and far monthly futures of every index (expiries from the calendar)."""
        today = self.clock().astimezone(IST).date()
        for ins in [i for i in self.instruments if i.instrument_type == "INDEX"]:
            self.instruments.add(generate_future_series(ins, today, self.calendar, count))

    # ------------------------------------------------------------------ instruments & params

    def _instrument(self, symbol: str) -> Instrument:
        return self.instruments.by_symbol(symbol)

    def _sigma(self, ins: Instrument) -> float:
        default = self.index_vol if ins.instrument_type == "INDEX" else self.vol
        return self.vols.get(ins.trading_symbol.upper(), default)

    def _base_price(self, ins: Instrument) -> float:
        if ins.base_price is None or ins.base_price <= 0:
            raise ValidationFailed(f"{ins.trading_symbol} has no reference price to simulate from")
        return float(ins.base_price)

    def _base_volume(self, ins: Instrument) -> float:
        if ins.instrument_type == "INDEX":
            return 0.0
        # ~INR 1,500 crore a day for a large cap, fewer shares the dearer the stock.
        return 1.5e10 / self._base_price(ins)

    # ------------------------------------------------------------------ daily path

    def _ensure_days(self, until: date) -> None:
        if self._days and self._days[-1] >= until:
            return
        end = max(until, self.anchor_date) + timedelta(days=366)
        self._days = self.calendar.trading_days(self.history_start, end)
        self._day_index = {d: i for i, d in enumerate(self._days)}
        self._logclose.clear()  # arrays grow; values for existing days are unchanged

    def _log_closes(self, ins: Instrument) -> np.ndarray:
        sym = ins.trading_symbol.upper()
        arr = self._logclose.get(sym)
        if arr is not None and len(arr) == len(self._days):
            return arr
        sigma = self._sigma(ins)
        dt = 1.0 / TRADING_DAYS_PER_YEAR
        z = np.array([_normal(self.seed, sym, "d", d.isoformat()) for d in self._days])
        cum = np.cumsum((self.drift - 0.5 * sigma * sigma) * dt + sigma * math.sqrt(dt) * z)
        anchor = self._day_index.get(self.calendar.next_trading_day(self.anchor_date, include=True), 0)
        arr = math.log(self._base_price(ins)) + cum - cum[anchor]
        self._logclose[sym] = arr
        return arr

    def _session(self, ins: Instrument, day: date) -> _Session:
        key = (ins.trading_symbol.upper(), day)
        cached = self._sessions.get(key)
        if cached is not None:
            self._sessions.move_to_end(key)
            return cached
        self._ensure_days(day)
        i = self._day_index.get(day)
        if i is None:
            raise ValidationFailed(f"{day} is not a simulated trading day")
        logc = self._log_closes(ins)
        sigma = self._sigma(ins)
        sym = key[0]
        sd_day = sigma / math.sqrt(TRADING_DAYS_PER_YEAR)
        prev = logc[i - 1] if i > 0 else logc[i] - (self.drift - 0.5 * sigma * sigma) / TRADING_DAYS_PER_YEAR
        log_open = prev + 0.2 * sd_day * _normal(self.seed, sym, "gap", day.isoformat())
        log_close = logc[i]
        rng = np.random.default_rng(_seed_int(self.seed, sym, "session", day.isoformat()))
        n = SESSION_MINUTES
        sd_min = sd_day / math.sqrt(n)
        walk = np.concatenate(([0.0], np.cumsum(rng.standard_normal(n) * sd_min)))
        frac = np.arange(n + 1) / n
        path = log_open + walk - frac * walk[-1] + frac * (log_close - log_open)
        tick = float(ins.tick_size)
        prices = np.exp(path)
        o, c = prices[:-1], prices[1:]
        wick_hi = np.exp(np.abs(rng.standard_normal(n)) * sd_min * 0.5)
        wick_lo = np.exp(-np.abs(rng.standard_normal(n)) * sd_min * 0.5)
        base_vol = self._base_volume(ins)
        if base_vol > 0:
            day_vol = base_vol * math.exp(0.35 * _normal(self.seed, sym, "vol", day.isoformat()))
            u_shape = 1.0 + 2.0 * ((np.arange(n) - (n - 1) / 2) / ((n - 1) / 2)) ** 2
            weights = u_shape * np.exp(0.4 * rng.standard_normal(n))
            volume = np.floor(day_vol * weights / weights.sum()).astype(np.int64)
        else:
            volume = np.zeros(n, dtype=np.int64)
        session = _Session(
            open=np.rint(o / tick).astype(np.int64),
            high=np.rint(np.maximum(o, c) * wick_hi / tick).astype(np.int64),
            low=np.maximum(np.rint(np.minimum(o, c) * wick_lo / tick), 1).astype(np.int64),
            close=np.rint(c / tick).astype(np.int64),
            volume=volume,
            logpath=path,
        )
        self._sessions[key] = session
        if len(self._sessions) > _DAY_CACHE_SIZE:
            self._sessions.popitem(last=False)
        return session

    # ------------------------------------------------------------------ candles

    def candles(self, symbol: str, interval: str, start: datetime, end: datetime) -> list[Candle]:
        validate_range(interval, start, end)
        ins = self._instrument(symbol)
        if ins.instrument_type == "FUT":
            return self._future_candles(ins, interval, start, end)
        if ins.is_option:
            raise ValidationFailed("historical candles of option contracts are not simulated")
        now = self.clock()
        tick = ins.tick_size
        first = max(start.astimezone(IST).date(), self.history_start)
        last = min(end, now).astimezone(IST).date()
        out: list[Candle] = []
        if first > last:
            return out
        self._ensure_days(last)
        width = interval_delta(interval)
        for day in self.calendar.trading_days(first, last):
            s = self._session(ins, day)
            if interval == "1d":
                ts = daily_bar_ts(day)
                if start <= ts <= end and self.calendar.session_close(day) <= now:
                    out.append(
                        _candle(ts, s.open[0], s.high.max(), s.low.min(), s.close[-1], s.volume.sum(), tick)
                    )
                continue
            size = _INTERVAL_MINUTES[interval]
            open_ = self.calendar.session_open(day)
            for b in range(0, SESSION_MINUTES, size):
                ts = (open_ + timedelta(minutes=b)).astimezone(UTC)
                if ts < start or ts > end:
                    continue
                stop = min(b + size, SESSION_MINUTES)
                if ts + min(width, timedelta(minutes=stop - b)) > now:
                    break  # bar not complete yet; later ones are not either
                out.append(
                    _candle(
                        ts,
                        s.open[b],
                        s.high[b:stop].max(),
                        s.low[b:stop].min(),
                        s.close[stop - 1],
                        s.volume[b:stop].sum(),
                        tick,
                    )
                )
        return out

    def _future_candles(self, c: Instrument, interval: str, start: datetime, end: datetime) -> list[Candle]:
        """The index's bars at the cost of carry of each bar's start, up to the contract's expiry
        (the carry changes by well under a tick within one bar); no volume, as the index has none."""
        assert c.underlying is not None and c.expiry is not None
        last = min(end, self.calendar.session_close(c.expiry).astimezone(UTC))
        out = []
        for bar in self.candles(c.underlying, interval, start, last):
            k = 1.0 + self.carry_rate * self._years_to_expiry(c.expiry, bar.ts)
            o, h, lo, cl = (
                _to_tick(float(x) * k, c.tick_size) for x in (bar.open, bar.high, bar.low, bar.close)
            )
            out.append(
                Candle(ts=bar.ts, open=o, high=max(o, h, lo, cl), low=min(o, h, lo, cl), close=cl, volume=0)
            )
        return out

    # ------------------------------------------------------------------ spot & ticks

    def _state_at(self, ins: Instrument, at: datetime) -> tuple[float, date, int, float]:
        """(price, session day, minutes elapsed in session, cumulative volume) at ``at``."""
        local = at.astimezone(IST)
        day = local.date()
        if self.calendar.is_trading_day(day) and local >= self.calendar.session_open(day):
            if local >= self.calendar.session_close(day):
                if self.off_session_moves:
                    return self._off_session_state(ins, local)
                s = self._session(ins, day)
                return math.exp(s.logpath[-1]), day, SESSION_MINUTES, float(s.volume.sum())
            s = self._session(ins, day)
            secs = (local - self.calendar.session_open(day)).total_seconds()
            m, rem = int(secs // 60), secs % 60
            frac = rem / 60.0
            x0, x1 = s.logpath[m], s.logpath[m + 1]
            sd_min = self._sigma(ins) / math.sqrt(TRADING_DAYS_PER_YEAR * SESSION_MINUTES)
            # Bridge noise pinned to zero at both minute ends, so whole minutes hit the bar close.
            noise = (
                0.5
                * sd_min
                * math.sqrt(frac * (1 - frac))
                * _normal(self.seed, ins.trading_symbol, int(secs))
            )
            cum = float(s.volume[:m].sum()) + float(s.volume[m]) * frac
            return math.exp(x0 + frac * (x1 - x0) + noise), day, m, cum
        if self.off_session_moves:
            return self._off_session_state(ins, local)
        prev = self.calendar.previous_trading_day(day)
        s = self._session(ins, prev)
        return math.exp(s.logpath[-1]), prev, SESSION_MINUTES, float(s.volume.sum())

    def _off_session_state(self, ins: Instrument, local: datetime) -> tuple[float, date, int, float]:
        """Between two sessions (``MARKET_CLOCK=always_open``): a per-minute Brownian bridge from the
        last close to the next session's open, so the simulated market moves in the evening and on
        holidays yet still opens where the day path says (history and candles are unchanged)."""
        day = local.date()
        if self.calendar.is_trading_day(day) and local >= self.calendar.session_close(day):
            prev = day
        else:
            prev = self.calendar.previous_trading_day(day)
        nxt = self.calendar.next_trading_day(prev)
        start, end = self.calendar.session_close(prev), self.calendar.session_open(nxt)
        s_prev, s_next = self._session(ins, prev), self._session(ins, nxt)
        n = max(int((end - start).total_seconds() // 60), 1)
        walk = self._gap_walk(ins, prev, n)
        x0, x1 = float(s_prev.logpath[-1]), float(s_next.logpath[0])
        minutes = min(max((local - start).total_seconds() / 60.0, 0.0), float(n))
        m = min(int(minutes), n - 1)
        frac = minutes - m

        def bridge(k: int) -> float:
            return x0 + walk[k] - (k / n) * walk[n] + (k / n) * (x1 - x0)

        price = math.exp(bridge(m) + frac * (bridge(m + 1) - bridge(m)))
        return price, prev, SESSION_MINUTES, float(s_prev.volume.sum())

    def _gap_walk(self, ins: Instrument, prev: date, n: int) -> np.ndarray:
        key = (ins.trading_symbol.upper(), prev)
        walk = self._gaps.get(key)
        if walk is None or len(walk) != n + 1:
            # half the session's per-minute volatility: markets are quieter after hours
            sd_min = 0.5 * self._sigma(ins) / math.sqrt(TRADING_DAYS_PER_YEAR * SESSION_MINUTES)
            rng = np.random.default_rng(_seed_int(self.seed, key[0], "gap-walk", prev.isoformat()))
            walk = np.concatenate(([0.0], np.cumsum(rng.standard_normal(n) * sd_min)))
            self._gaps[key] = walk
            if len(self._gaps) > _DAY_CACHE_SIZE:
                self._gaps.popitem(last=False)
        return walk

    def _spot(self, ins: Instrument, at: datetime) -> float:
        return self._state_at(ins, at)[0]

    def tick(self, symbols: list[str], now: datetime) -> list[Tick]:
        out: list[Tick] = []
        for sym in unique(symbols):
            ins = self._instrument(sym)
            if ins.is_option or ins.instrument_type == "FUT":
                q = self._derivative_quote(ins, now)
                out.append(Tick(ins.trading_symbol, q.ltp, q.bid, q.ask, 0, now, q.volume))
                continue
            price, _day, _m, cum = self._state_at(ins, now)
            before = self._state_at(ins, now - timedelta(seconds=1))[3]
            ltp = _to_tick(price, ins.tick_size)
            bid, ask = self._bid_ask(ins, ltp)
            out.append(Tick(ins.trading_symbol, ltp, bid, ask, max(int(cum) - int(before), 0), now, int(cum)))
        return out

    def _bid_ask(self, ins: Instrument, ltp: Decimal) -> tuple[Decimal, Decimal]:
        if ins.instrument_type == "INDEX":
            return ltp, ltp  # indices are not traded: no book
        tick = ins.tick_size
        # options 0.5% either side; index futures are the deepest book (0.2 bp); equities 1 bp
        pct = (
            Decimal("0.005")
            if ins.is_option
            else Decimal("0.00002")
            if ins.instrument_type == "FUT"
            else Decimal("0.0001")
        )
        half = max(1, int((ltp * pct / tick).to_integral_value())) * tick
        return max(ltp - half, tick), ltp + half

    # ------------------------------------------------------------------ quotes

    def quotes(self, symbols: list[str]) -> dict[str, Quote]:
        now = self.clock()
        out: dict[str, Quote] = {}
        for sym in unique(symbols):
            ins = self._instrument(sym)
            derivative = ins.is_option or ins.instrument_type == "FUT"
            out[sym] = self._derivative_quote(ins, now) if derivative else self._quote(ins, now)
        return out

    def ltp(self, symbols: list[str]) -> dict[str, Decimal]:
        now = self.clock()
        out: dict[str, Decimal] = {}
        for sym in unique(symbols):
            ins = self._instrument(sym)
            if ins.is_option:
                out[sym] = _to_tick(self._option_price(ins, now), ins.tick_size)
            elif ins.instrument_type == "FUT":
                out[sym] = _to_tick(self._future_price(ins, now), ins.tick_size)
            else:
                out[sym] = _to_tick(self._spot(ins, now), ins.tick_size)
        return out

    def _quote(self, ins: Instrument, now: datetime) -> Quote:
        price, day, m, cum = self._state_at(ins, now)
        s = self._session(ins, day)
        tick = ins.tick_size
        ltp = _to_tick(price, tick)
        upto = max(m, 1)
        high = max(_from_ticks(s.high[:upto].max(), tick), ltp)
        low = min(_from_ticks(s.low[:upto].min(), tick), ltp)
        prev = self.calendar.previous_trading_day(day)
        prev_close = _to_tick(math.exp(self._session(ins, prev).logpath[-1]), tick)
        bid, ask = self._bid_ask(ins, ltp)
        return Quote(
            symbol=ins.trading_symbol,
            ltp=ltp,
            bid=bid,
            ask=ask,
            open=_from_ticks(s.open[0], tick),
            high=high,
            low=low,
            close=prev_close,
            volume=int(cum),
            ts=now,
            instrument_key=ins.instrument_key,
        )

    # ------------------------------------------------------------------ options

    def expiries(self, underlying: str) -> list[date]:
        ins = self._instrument(underlying)
        today = self.clock().astimezone(IST).date()
        return [e for e in self.instruments.expiries(ins.trading_symbol) if e >= today]

    def smile(self, ins: Instrument, strikes: np.ndarray, forward: float) -> np.ndarray:
        atm = self.atm_vol if self.atm_vol is not None else self._sigma(ins)
        m = np.log(strikes / forward)
        return np.maximum(atm + self.skew * m + self.curvature * m * m, 0.01)

    def _years_to_expiry(self, expiry: date, now: datetime) -> float:
        return max((self.calendar.session_close(expiry) - now).total_seconds(), 0.0) / SECONDS_PER_YEAR

    def option_chain(self, underlying: str, expiry: date) -> OptionChain:
        ins = self._instrument(underlying)
        contracts = self.instruments.options(ins.trading_symbol, expiry)
        if not contracts:
            raise NotFound(f"no {ins.trading_symbol} options listed for expiry {expiry}")
        now = self.clock()
        spot = self._spot(ins, now)
        t = self._years_to_expiry(expiry, now)
        legs: dict[Decimal, dict[str, OptionLeg]] = {}
        strikes = np.array([float(c.strike) for c in contracts])
        types = np.array([c.instrument_type for c in contracts])
        iv = self.smile(ins, strikes, spot * math.exp(self.rate * t))
        prices = bs_price_array(spot, strikes, t, self.rate, iv, types)
        greeks = bs_greeks_array(spot, strikes, t, self.rate, iv, types)
        lot = contracts[0].lot_size
        for j, c in enumerate(contracts):
            assert c.strike is not None
            ltp = _to_tick(max(float(prices[j]), float(c.tick_size)), c.tick_size)
            bid, ask = self._bid_ask(c, ltp)
            oi, vol = self._open_interest(c, spot, now)
            legs.setdefault(c.strike, {})[c.instrument_type] = OptionLeg(
                ltp=ltp,
                bid=bid,
                ask=ask,
                iv=float(iv[j]) if t > 0 else 0.0,
                delta=float(greeks.delta[j]),
                gamma=float(greeks.gamma[j]),
                theta=float(greeks.theta[j]),
                vega=float(greeks.vega[j]),
                oi=oi,
                volume=vol,
                instrument_key=c.instrument_key,
            )
        rows = tuple(ChainRow(strike=k, call=v.get("CE"), put=v.get("PE")) for k, v in legs.items())
        return OptionChain(
            underlying=ins.trading_symbol,
            expiry=expiry,
            spot=_to_tick(spot, ins.tick_size),
            rows=rows,
            lot_size=lot,
        )

    def _open_interest(self, c: Instrument, spot: float, now: datetime) -> tuple[int, int]:
        """Deterministic OI and volume: a bell around the spot, puts heavier below it and calls
        above (where writers sit), rounded to whole lots."""
        assert c.strike is not None
        dist = (float(c.strike) - spot) / spot
        otm = dist > 0 if c.instrument_type == "CE" else dist < 0
        bell = math.exp(-((dist / 0.03) ** 2))
        day = now.astimezone(IST).date().isoformat()
        noise = math.exp(0.25 * _normal(self.seed, c.instrument_key, "oi", day))
        lots = 40_000 * bell * (1.4 if otm else 0.8) * noise
        oi = int(lots) * c.lot_size
        vol = int(lots * 3.0 * math.exp(0.3 * _normal(self.seed, c.instrument_key, "v", day))) * c.lot_size
        return oi, vol

    def _option_price(self, c: Instrument, at: datetime) -> float:
        assert c.underlying is not None and c.strike is not None and c.expiry is not None
        u = self._instrument(c.underlying)
        spot = self._spot(u, at)
        t = self._years_to_expiry(c.expiry, at)
        iv = self.smile(u, np.array([float(c.strike)]), spot * math.exp(self.rate * t))
        price = bs_price_array(spot, float(c.strike), t, self.rate, iv, c.instrument_type)
        return max(float(np.asarray(price).reshape(-1)[0]), float(c.tick_size))

    def _future_price(self, c: Instrument, at: datetime) -> float:
        """Cost of carry on the index: ``spot * (1 + r * t)``, t in years to the expiry's close (0
        from then on, so an expired future is worth the index close: its final settlement price)."""
        assert c.underlying is not None and c.expiry is not None
        spot = self._spot(self._instrument(c.underlying), at)
        return spot * (1.0 + self.carry_rate * self._years_to_expiry(c.expiry, at))

    def _derivative_quote(self, c: Instrument, now: datetime) -> Quote:
        """A future's or an option's quote: its model price now, at today's open and at the previous
        close, with the contract's own open interest and volume."""
        assert c.underlying is not None
        u = self._instrument(c.underlying)
        _p, day, _m, _cum = self._state_at(u, now)
        price = self._option_price if c.is_option else self._future_price
        tick = c.tick_size
        ltp = _to_tick(price(c, now), tick)
        open_ = _to_tick(price(c, self.calendar.session_open(day)), tick)
        prev_day = self.calendar.previous_trading_day(day)
        prev_close = _to_tick(price(c, self.calendar.session_close(prev_day)), tick)
        bid, ask = self._bid_ask(c, ltp)
        if c.is_option:
            oi, vol = self._open_interest(c, self._spot(u, now), now)
        else:
            d = now.astimezone(IST).date().isoformat()
            lots = 150_000 * math.exp(0.25 * _normal(self.seed, c.instrument_key, "oi", d))
            vol = int(lots * 1.5 * math.exp(0.3 * _normal(self.seed, c.instrument_key, "v", d))) * c.lot_size
            oi = int(lots) * c.lot_size
        return Quote(
            symbol=c.trading_symbol,
            ltp=ltp,
            bid=bid,
            ask=ask,
            open=open_,
            high=max(open_, ltp),
            low=min(open_, ltp),
            close=prev_close,
            volume=vol,
            ts=now,
            instrument_key=c.instrument_key,
            oi=oi,
        )


def _from_ticks(n: int | np.integer, tick: Decimal) -> Decimal:
    return (Decimal(int(n)) * tick).quantize(tick)


def _to_tick(price: float, tick: Decimal) -> Decimal:
    return _from_ticks(max(int(round(price / float(tick))), 1), tick)


def _candle(ts: datetime, o: int, h: int, lo: int, c: int, v: int, tick: Decimal) -> Candle:
    return Candle(
        ts=ts,
        open=_from_ticks(o, tick),
        high=_from_ticks(h, tick),
        low=_from_ticks(lo, tick),
        close=_from_ticks(c, tick),
        volume=int(v),
    )
