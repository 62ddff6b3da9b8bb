"""Instruments: the value type, a realistic NSE seed set, an option-series generator for the
simulated market, a registry for symbol <-> key look-ups and parsers for Upstox's
instrument files (BOD JSON and the legacy CSV)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from backend.domain.errors import NotFound, ValidationFailed
from backend.domain.market.calendar import IST, NseCalendar

SEGMENTS = ("NSE_EQ", "NSE_INDEX", "NSE_FO")
INSTRUMENT_TYPES = ("EQ", "INDEX", "FUT", "CE", "PE")


@dataclass(frozen=True, slots=True)
class Instrument:
    instrument_key: str  # Upstox style, e.g. "NSE_EQ|INE002A01018"
    trading_symbol: str  # e.g. "RELIANCE", "NIFTY", "NIFTY 24500 CE 30 JAN 25"
    name: str
    exchange: str  # "NSE"
    segment: str  # NSE_EQ, NSE_INDEX, NSE_FO
    instrument_type: str  # EQ, INDEX, FUT, CE, PE
    lot_size: int = 1
    tick_size: Decimal = Decimal("0.05")
    freeze_quantity: int | None = None
    expiry: date | None = None
    strike: Decimal | None = None
    underlying: str | None = None  # trading symbol of the underlying (derivatives only)
    sector: str | None = None
    base_price: Decimal | None = None  # reference price for the simulator, None when unknown

    @property
    def is_option(self) -> bool:
        return self.instrument_type in ("CE", "PE")


# --------------------------------------------------------------------------- seed set

# (symbol, ISIN, company name, sector, reference price in INR). ISINs are the real NSE ones;
# prices are rounded recent levels, only a starting point for the simulator.
_EQUITIES: tuple[tuple[str, str, str, str, str], ...] = (
    ("RELIANCE", "INE002A01018", "RELIANCE INDUSTRIES LTD", "Energy", "1420"),
    ("TCS", "INE467B01029", "TATA CONSULTANCY SERV LT", "Information Technology", "3450"),
    ("HDFCBANK", "INE040A01034", "HDFC BANK LTD", "Financial Services", "1950"),
    ("INFY", "INE009A01021", "INFOSYS LIMITED", "Information Technology", "1560"),
    ("ICICIBANK", "INE090A01021", "ICICI BANK LTD.", "Financial Services", "1420"),
    ("HINDUNILVR", "INE030A01027", "HINDUSTAN UNILEVER LTD.", "Fast Moving Consumer Goods", "2400"),
    ("ITC", "INE154A01025", "ITC LTD", "Fast Moving Consumer Goods", "415"),
    ("SBIN", "INE062A01020", "STATE BANK OF INDIA", "Financial Services", "810"),
    ("BHARTIARTL", "INE397D01024", "BHARTI AIRTEL LIMITED", "Telecommunication", "1880"),
    ("KOTAKBANK", "INE237A01028", "KOTAK MAHINDRA BANK LTD", "Financial Services", "2100"),
    ("LT", "INE018A01030", "LARSEN & TOUBRO LTD.", "Construction", "3600"),
    ("AXISBANK", "INE238A01034", "AXIS BANK LIMITED", "Financial Services", "1180"),
    ("BAJFINANCE", "INE296A01024", "BAJAJ FINANCE LIMITED", "Financial Services", "8900"),
    ("ASIANPAINT", "INE021A01026", "ASIAN PAINTS LIMITED", "Consumer Durables", "2350"),
    ("MARUTI", "INE585B01010", "MARUTI SUZUKI INDIA LTD.", "Automobile and Auto Components", "12400"),
    ("HCLTECH", "INE860A01027", "HCL TECHNOLOGIES LTD", "Information Technology", "1650"),
    ("SUNPHARMA", "INE044A01036", "SUN PHARMACEUTICAL IND L", "Healthcare", "1700"),
    ("TITAN", "INE280A01028", "TITAN COMPANY LIMITED", "Consumer Durables", "3400"),
    ("WIPRO", "INE075A01022", "WIPRO LTD", "Information Technology", "255"),
    ("ULTRACEMCO", "INE481G01011", "ULTRATECH CEMENT LIMITED", "Construction Materials", "11500"),
    ("NTPC", "INE733E01010", "NTPC LTD", "Power", "340"),
    ("POWERGRID", "INE752E01010", "POWER GRID CORP. LTD.", "Power", "300"),
    ("TATASTEEL", "INE081A01020", "TATA STEEL LIMITED", "Metals & Mining", "155"),
    ("ONGC", "INE213A01029", "OIL AND NATURAL GAS CORP.", "Oil Gas & Consumable Fuels", "245"),
    ("TECHM", "INE669C01036", "TECH MAHINDRA LIMITED", "Information Technology", "1600"),
    ("NHPC", "INE848E01016", "NHPC LTD", "Power", "82"),
)

# (symbol, instrument_key, name, reference price, strike step, lot size, freeze qty, weekly?)
# Freeze quantities per NSE's circular of 31 Oct 2025, effective 3 Nov 2025: NIFTY 1800, BANKNIFTY 600
# (https://rhnvrm.github.io/stock-market-circulars/circulars/nse/2025/nse-2025-10-31-c75672c8d864935e-quantity-freeze-limits-for-indices).
# The lot size here is the current one (see INDEX_LOT_SIZES for contracts of earlier series);
# BANKNIFTY has only monthly contracts since Nov 2024, NIFTY keeps weekly ones.
_INDICES: tuple[tuple[str, str, str, str, int, int, int, bool], ...] = (
    ("NIFTY", "NSE_INDEX|Nifty 50", "Nifty 50", "24500", 50, 65, 1800, True),
    ("BANKNIFTY", "NSE_INDEX|Nifty Bank", "Nifty Bank", "52000", 100, 30, 600, False),
)

INDEX_STRIKE_STEP: dict[str, int] = {sym: step for sym, _k, _n, _p, step, _l, _f, _w in _INDICES}
INDEX_LOT_SIZE: dict[str, int] = {sym: lot for sym, _k, _n, _p, _s, lot, _f, _w in _INDICES}

# Lot sizes by the first expiry they apply to, oldest first (NSE circulars):
#   20 Nov 2024  NIFTY 25 -> 75, BANKNIFTY 15 -> 30 (SEBI minimum contract value Rs 15 lakh;
#                business-standard.com, 19 Oct 2024)
#   Jul 2025     BANKNIFTY 30 -> 35 from the July 2025 monthly expiry (ndtvprofit.com, Mar 2025)
#   Jan 2026     NIFTY 75 -> 65, BANKNIFTY 35 -> 30 for contracts from the January 2026 series
#                (NSE circular of Oct 2025; ndtvprofit.com, venturasecurities.com)
INDEX_LOT_SIZES: dict[str, tuple[tuple[date, int], ...]] = {
    "NIFTY": ((date(2024, 11, 20), 75), (date(2026, 1, 1), 65)),
    "BANKNIFTY": ((date(2024, 11, 20), 30), (date(2025, 7, 1), 35), (date(2026, 1, 1), 30)),
}


def lot_size_for(underlying: str, expiry: date) -> int | None:
    """The lot size of ``underlying``'s contracts expiring on ``expiry`` (None: not tabulated)."""
    table = INDEX_LOT_SIZES.get(underlying.upper())
    if not table:
        return None
    lot = table[0][1]
    for start, size in table:
        if start <= expiry:
            lot = size
    return lot


# NSE moved index derivative expiries to Tuesday from September 2025.
EXPIRY_WEEKDAY = 1


def seed_equities() -> list[Instrument]:
    return [
        Instrument(
            instrument_key=f"NSE_EQ|{isin}",
            trading_symbol=sym,
            name=name,
            exchange="NSE",
            segment="NSE_EQ",
            instrument_type="EQ",
            lot_size=1,
            tick_size=Decimal("0.05") if Decimal(price) >= 250 else Decimal("0.01"),
            sector=sector,
            base_price=Decimal(price),
        )
        for sym, isin, name, sector, price in _EQUITIES
    ]


def seed_indices() -> list[Instrument]:
    return [
        Instrument(
            instrument_key=key,
            trading_symbol=sym,
            name=name,
            exchange="NSE",
            segment="NSE_INDEX",
            instrument_type="INDEX",
            lot_size=lot,
            tick_size=Decimal("0.05"),
            freeze_quantity=freeze,
            base_price=Decimal(price),
        )
        for sym, key, name, price, _step, lot, freeze, _weekly in _INDICES
    ]


def seed_instruments() -> list[Instrument]:
    """Equities and indices (no derivatives; see :func:`generate_option_series`)."""
    return seed_equities() + seed_indices()


def _last_weekday_of_month(year: int, month: int, weekday: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    d = nxt - timedelta(days=1)
    return d - timedelta(days=(d.weekday() - weekday) % 7)


def option_expiries(
    underlying: str,
    today: date,
    calendar: NseCalendar | None = None,
    weekly_count: int = 4,
    monthly_count: int = 3,
) -> list[date]:
    """Upcoming expiries: weekly (NIFTY only) and monthly (last Tuesday), each moved to the
    previous trading day when it falls on a holiday. Expiries on ``today`` are included."""
    cal = calendar or NseCalendar()
    weekly = any(sym == underlying and w for sym, *_rest, w in _INDICES)
    out: set[date] = set()
    if weekly:
        d = today + timedelta(days=(EXPIRY_WEEKDAY - today.weekday()) % 7)
        while len(out) < weekly_count:
            exp = cal.previous_trading_day(d, include=True)
            if exp >= today:
                out.add(exp)
            d += timedelta(days=7)
    y, m, added = today.year, today.month, 0
    while added < monthly_count:
        exp = cal.previous_trading_day(_last_weekday_of_month(y, m, EXPIRY_WEEKDAY), include=True)
        if exp >= today:
            out.add(exp)
            added += 1
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return sorted(out)


def option_trading_symbol(underlying: str, expiry: date, strike: Decimal, option_type: str) -> str:
    """Upstox JSON style, e.g. "NIFTY 24500 CE 30 JAN 25"."""
    return f"{underlying} {strike.normalize():f} {option_type} {expiry.strftime('%d %b %y').upper()}"


def _sim_token(text: str) -> str:
    # Stable pseudo exchange token (hashlib, not hash(): the latter is salted per process).
    return str(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % 900_000_000 + 100_000_000)


def generate_option_series(
    underlying: Instrument,
    reference_price: Decimal,
    today: date,
    calendar: NseCalendar | None = None,
    strikes_each_side: int = 20,
    weekly_count: int = 4,
    monthly_count: int = 3,
) -> list[Instrument]:
    """CE/PE contracts for each upcoming expiry at ``strikes_each_side`` strikes either side of
    the strike nearest ``reference_price``, stepped by the index strike step (50 / 100)."""
    sym = underlying.trading_symbol
    step = Decimal(INDEX_STRIKE_STEP.get(sym, _equity_strike_step(reference_price)))
    atm = (Decimal(reference_price) / step).quantize(Decimal(1)) * step
    out: list[Instrument] = []
    for expiry in option_expiries(sym, today, calendar, weekly_count, monthly_count):
        lot = lot_size_for(sym, expiry) or INDEX_LOT_SIZE.get(sym, underlying.lot_size)
        for i in range(-strikes_each_side, strikes_each_side + 1):
            strike = atm + step * i
            if strike <= 0:
                continue
            for opt in ("CE", "PE"):
                ts = option_trading_symbol(sym, expiry, strike, opt)
                out.append(
                    Instrument(
                        instrument_key=f"NSE_FO|{_sim_token(ts)}",
                        trading_symbol=ts,
                        name=sym,
                        exchange="NSE",
                        segment="NSE_FO",
                        instrument_type=opt,
                        lot_size=lot,
                        tick_size=Decimal("0.05"),
                        freeze_quantity=underlying.freeze_quantity,
                        expiry=expiry,
                        strike=strike,
                        underlying=sym,
                    )
                )
    return out


def future_trading_symbol(underlying: str, expiry: date) -> str:
    """Upstox JSON style, e.g. "NIFTY FUT 30 DEC 25"."""
    return f"{underlying} FUT {expiry.strftime('%d %b %y').upper()}"


def future_expiries(today: date, calendar: NseCalendar | None = None, count: int = 3) -> list[date]:
    """The near, next and far monthly futures expiries on or after ``today``: the last Tuesday of
    each month, moved to the previous trading day when it is a holiday (as option expiries are).
    NSE lists index futures on a three-month cycle (near, next, far)."""
    cal = calendar or NseCalendar()
    y, m, out = today.year, today.month, []
    while len(out) < count:
        exp = cal.previous_trading_day(_last_weekday_of_month(y, m, EXPIRY_WEEKDAY), include=True)
        if exp >= today:
            out.append(exp)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def generate_future_series(
    underlying: Instrument, today: date, calendar: NseCalendar | None = None, count: int = 3
) -> list[Instrument]:
    """FUT contracts of an index for its near, next and far monthly expiries, each with the lot size
    of its series (:func:`lot_size_for`) and the index's freeze quantity."""
    sym = underlying.trading_symbol
    out = []
    for expiry in future_expiries(today, calendar, count):
        ts = future_trading_symbol(sym, expiry)
        out.append(
            Instrument(
                instrument_key=f"NSE_FO|{_sim_token(ts)}",
                trading_symbol=ts,
                name=sym,
                exchange="NSE",
                segment="NSE_FO",
                instrument_type="FUT",
                lot_size=lot_size_for(sym, expiry) or INDEX_LOT_SIZE.get(sym, underlying.lot_size),
                tick_size=Decimal("0.05"),
                freeze_quantity=underlying.freeze_quantity,
                expiry=expiry,
                underlying=sym,
            )
        )
    return out


def _equity_strike_step(price: Decimal) -> int:
    p = Decimal(price)
    for limit, step in ((250, 5), (1000, 10), (2500, 20), (5000, 50)):
        if p < limit:
            return step
    return 100


class InstrumentRegistry:
    """In-memory look-up by trading symbol and by instrument key."""

    def __init__(self, instruments: Iterable[Instrument] = ()):
        self._by_symbol: dict[str, Instrument] = {}
        self._by_key: dict[str, Instrument] = {}
        self._options: dict[tuple[str, date], list[Instrument]] = {}
        self._futures: dict[str, list[Instrument]] = {}
        self.add(instruments)

    def add(self, instruments: Iterable[Instrument]) -> None:
        for ins in instruments:
            self._by_symbol[ins.trading_symbol.upper()] = ins
            self._by_key[ins.instrument_key] = ins
            if ins.is_option and ins.underlying and ins.expiry:
                self._options.setdefault((ins.underlying.upper(), ins.expiry), []).append(ins)
            elif ins.instrument_type == "FUT" and ins.underlying and ins.expiry:
                listed = self._futures.setdefault(ins.underlying.upper(), [])
                listed[:] = sorted(
                    {i.instrument_key: i for i in [*listed, ins]}.values(), key=lambda i: i.expiry
                )

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self):
        return iter(self._by_key.values())

    def get(self, symbol: str) -> Instrument | None:
        return self._by_symbol.get(symbol.upper())

    def by_symbol(self, symbol: str) -> Instrument:
        ins = self.get(symbol)
        if ins is None:
            raise NotFound(f"unknown symbol {symbol!r}", details={"symbol": symbol})
        return ins

    def by_key(self, instrument_key: str) -> Instrument | None:
        return self._by_key.get(instrument_key)

    def expiries(self, underlying: str) -> list[date]:
        u = underlying.upper()
        return sorted(exp for (sym, exp) in self._options if sym == u)

    def options(self, underlying: str, expiry: date) -> list[Instrument]:
        return list(self._options.get((underlying.upper(), expiry), []))

    def futures(self, underlying: str) -> list[Instrument]:
        """``underlying``'s futures, nearest expiry first."""
        return list(self._futures.get(underlying.upper(), []))


def default_registry(
    today: date | None = None, calendar: NseCalendar | None = None, strikes_each_side: int = 20
) -> InstrumentRegistry:
    """Seed equities and indices plus generated NIFTY / BANKNIFTY option series and futures."""
    today = today or datetime.now(IST).date()
    reg = InstrumentRegistry(seed_instruments())
    for idx in seed_indices():
        assert idx.base_price is not None
        reg.add(generate_option_series(idx, idx.base_price, today, calendar, strikes_each_side))
        reg.add(generate_future_series(idx, today, calendar))
    return reg


# --------------------------------------------------------------------------- Upstox files

_CSV_COLUMNS = (
    "instrument_key",
    "exchange_token",
    "tradingsymbol",
    "name",
    "last_price",
    "expiry",
    "strike",
    "tick_size",
    "lot_size",
    "instrument_type",
    "option_type",
    "exchange",
)
_EQ_TYPES = {"EQ", "EQUITY", "BE", "BZ", "SM", "ST"}
_FUT_TYPES = {"FUT", "FUTIDX", "FUTSTK"}
_OPT_TYPES = {"OPTIDX", "OPTSTK", "CE", "PE"}
_UNDERLYING_RE = re.compile(r"^([A-Z&\-]+?)\d{2}")


def _bad(row: int, field: str, problem: str, value: Any = None) -> ValidationFailed:
    return ValidationFailed(
        f"row {row}: field '{field}' {problem}" + ("" if value is None else f" (got {value!r})"),
        details={"row": row, "field": field},
    )


def _req(rec: dict, row: int, field: str) -> str:
    val = rec.get(field)
    if val is None or str(val).strip() == "":
        raise _bad(row, field, "is required")
    return str(val).strip()


def _dec(rec: dict, row: int, field: str, required: bool = True) -> Decimal | None:
    val = rec.get(field)
    if val is None or str(val).strip() == "":
        if required:
            raise _bad(row, field, "is required")
        return None
    try:
        d = Decimal(str(val).strip())
    except InvalidOperation:
        raise _bad(row, field, "is not a number", val) from None
    if not d.is_finite():
        raise _bad(row, field, "is not a finite number", val)
    return d


def _int(rec: dict, row: int, field: str, required: bool = True) -> int | None:
    d = _dec(rec, row, field, required)
    if d is None:
        return None
    if d != d.to_integral_value():
        raise _bad(row, field, "is not a whole number", rec.get(field))
    return int(d)


def _segment_of(key: str, row: int) -> str:
    if "|" not in key:
        raise _bad(row, "instrument_key", "must look like SEGMENT|ID", key)
    return key.split("|", 1)[0]


def parse_upstox_csv(text: str, segments: Iterable[str] = SEGMENTS) -> list[Instrument]:
    """Parse Upstox's CSV instrument file; rows of other segments are skipped.

    Row numbers in errors count the header as row 1 (as a spreadsheet shows them)."""
    wanted = set(segments)
    reader = csv.DictReader(io.StringIO(text))
    missing = [
        c
        for c in ("instrument_key", "tradingsymbol", "instrument_type")
        if c not in (reader.fieldnames or [])
    ]
    if missing:
        raise ValidationFailed(
            f"row 1: missing column(s) {', '.join(missing)}", details={"row": 1, "field": missing[0]}
        )
    out: list[Instrument] = []
    for n, rec in enumerate(reader, start=2):
        key = _req(rec, n, "instrument_key")
        segment = _segment_of(key, n)
        if segment not in wanted:
            continue
        raw_type = _req(rec, n, "instrument_type").upper()
        option_type = (rec.get("option_type") or "").strip().upper()
        symbol = _req(rec, n, "tradingsymbol")
        expiry = strike = underlying = None
        if segment == "NSE_INDEX" or raw_type == "INDEX":
            itype = "INDEX"
        elif raw_type in _EQ_TYPES:
            itype = "EQ"
        elif raw_type in _FUT_TYPES or raw_type in _OPT_TYPES:
            if raw_type in _FUT_TYPES:
                itype = "FUT"
            else:
                itype = option_type if option_type in ("CE", "PE") else raw_type
                if itype not in ("CE", "PE"):
                    raise _bad(n, "option_type", "must be CE or PE for options", rec.get("option_type"))
                strike = _dec(rec, n, "strike")
            exp_raw = _req(rec, n, "expiry")
            try:
                expiry = date.fromisoformat(exp_raw)
            except ValueError:
                raise _bad(n, "expiry", "is not a YYYY-MM-DD date", exp_raw) from None
            m = _UNDERLYING_RE.match(symbol.upper())
            underlying = m.group(1) if m else (rec.get("name") or "").strip() or None
        else:
            raise _bad(n, "instrument_type", "is not a supported type", rec.get("instrument_type"))
        tick = _dec(rec, n, "tick_size")
        if tick is not None and tick <= 0:
            raise _bad(n, "tick_size", "must be positive", rec.get("tick_size"))
        lot = _int(rec, n, "lot_size")
        if lot is not None and lot <= 0:
            raise _bad(n, "lot_size", "must be positive", rec.get("lot_size"))
        last = _dec(rec, n, "last_price", required=False)
        out.append(
            Instrument(
                instrument_key=key,
                trading_symbol=symbol,
                name=(rec.get("name") or "").strip() or symbol,
                exchange="NSE",
                segment=segment,
                instrument_type=itype,
                lot_size=lot or 1,
                tick_size=tick or Decimal("0.05"),
                expiry=expiry,
                strike=strike,
                underlying=underlying,
                base_price=last if last else None,
            )
        )
    return out


def parse_upstox_json(data: str | bytes | list[dict], segments: Iterable[str] = SEGMENTS) -> list[Instrument]:
    """Parse Upstox's BOD JSON instruments (a list of objects); other segments are skipped.

    In that file ``tick_size`` is in paise (5.0 means 0.05 rupees) and ``expiry`` is epoch
    milliseconds; ISO dates are accepted too (the option-contract API uses them). Row numbers
    in errors are 1-based positions in the list."""
    wanted = set(segments)
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ValidationFailed(
                f"instrument file is not valid JSON: {exc.msg} at line {exc.lineno}"
            ) from None
    if not isinstance(data, list):
        raise ValidationFailed("instrument file must be a JSON list of objects")
    out: list[Instrument] = []
    for n, rec in enumerate(data, start=1):
        if not isinstance(rec, dict):
            raise ValidationFailed(f"row {n}: not a JSON object", details={"row": n})
        key = _req(rec, n, "instrument_key")
        segment = str(rec.get("segment") or _segment_of(key, n))
        if segment not in wanted:
            continue
        itype = _req(rec, n, "instrument_type").upper()
        if segment == "NSE_EQ":
            itype = "EQ"  # series codes such as BE/SM are still cash equities
        if itype not in INSTRUMENT_TYPES:
            raise _bad(n, "instrument_type", "is not a supported type", rec.get("instrument_type"))
        tick_paise = _dec(rec, n, "tick_size", required=itype != "INDEX")
        if tick_paise is not None and tick_paise <= 0:
            raise _bad(n, "tick_size", "must be positive", rec.get("tick_size"))
        lot = _int(rec, n, "lot_size", required=itype != "INDEX")
        if lot is not None and lot <= 0:
            raise _bad(n, "lot_size", "must be positive", rec.get("lot_size"))
        expiry = strike = None
        if itype in ("FUT", "CE", "PE"):
            expiry = _json_expiry(rec.get("expiry"), n)
        if itype in ("CE", "PE"):
            strike = _dec(rec, n, "strike_price")
        freeze = _dec(rec, n, "freeze_quantity", required=False)
        out.append(
            Instrument(
                instrument_key=key,
                trading_symbol=_req(rec, n, "trading_symbol"),
                name=str(rec.get("name") or rec.get("trading_symbol")),
                exchange=str(rec.get("exchange") or "NSE"),
                segment=segment,
                instrument_type=itype,
                lot_size=lot or 1,
                tick_size=(tick_paise / 100).normalize() if tick_paise is not None else Decimal("0.05"),
                freeze_quantity=int(freeze) if freeze is not None else None,
                expiry=expiry,
                strike=strike,
                underlying=rec.get("underlying_symbol") or None,
            )
        )
    return out


def _json_expiry(value: Any, row: int) -> date:
    if value is None or value == "":
        raise _bad(row, "expiry", "is required")
    if isinstance(value, int | float) and not isinstance(value, bool):
        # Epoch milliseconds of the expiry's end of day in IST.
        return datetime.fromtimestamp(value / 1000, tz=UTC).astimezone(IST).date()
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise _bad(row, "expiry", "is neither epoch milliseconds nor YYYY-MM-DD", value) from None


__all__ = [
    "Instrument",
    "InstrumentRegistry",
    "default_registry",
    "future_expiries",
    "future_trading_symbol",
    "generate_future_series",
    "generate_option_series",
    "lot_size_for",
    "option_expiries",
    "option_trading_symbol",
    "parse_upstox_csv",
    "parse_upstox_json",
    "seed_equities",
    "seed_indices",
    "seed_instruments",
]
