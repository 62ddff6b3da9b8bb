"""Transaction cost model (brokerage + Indian statutory charges) and the trading.yaml loader.

Charges are per executed order: one brokerage however many fills, and each statutory component
computed on the order's total traded value and rounded to the paisa (half-up), the way a contract
note shows it; GST is then 18% of the *rounded* components listed in ``gst_on`` (brokerage,
exchange charge, SEBI fee, IPFT, DP charge). Every rate may carry ``effective_from`` dates, so a
trade on a past day pays that day's rates. Rates live in config/trading.yaml, never in code;
``ChargeSchedule.default()`` mirrors that file for tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from backend.domain.errors import ValidationFailed
from backend.domain.orders.types import Product, Side

if TYPE_CHECKING:
    from backend.domain.orders.fills import FillConfig
    from backend.domain.risk.limits import RiskLimits
    from backend.domain.risk.margin import MarginParams

PAISA = Decimal("0.01")
RUPEE = Decimal("1")
_HUNDRED = Decimal(100)
_CRORE = Decimal(10_000_000)
_ZERO = Decimal("0.00")
GST_COMPONENTS = ("brokerage", "exchange_txn", "sebi_fee", "ipft", "dp_charge")


def to_paise(x: Decimal) -> Decimal:
    return x.quantize(PAISA, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class ProductRates:
    brokerage_mode: str  # "flat": brokerage_flat per order; "percent": brokerage_pct of turnover, capped
    brokerage_flat: Decimal = Decimal(0)
    brokerage_pct: Decimal = Decimal(0)
    brokerage_cap: Decimal | None = None
    stt_buy_pct: Decimal = Decimal(0)
    stt_sell_pct: Decimal = Decimal(0)
    stamp_buy_pct: Decimal = Decimal(0)
    dp_per_scrip: Decimal = Decimal(0)  # depository charge per scrip per delivery-sell day (sell side)
    stt_exercise_pct: Decimal = Decimal(0)  # options exercised at expiry: on the intrinsic value


@dataclass(frozen=True, slots=True)
class SegmentRates:
    exchange_txn_pct: Decimal
    sebi_fee_per_crore: Decimal
    products: Mapping[Product, ProductRates]
    ipft_per_crore: Decimal = Decimal(0)  # NSE Investor Protection Fund Trust levy


@dataclass(frozen=True, slots=True)
class ChargeBreakdown:
    turnover: Decimal
    brokerage: Decimal
    stt: Decimal
    exchange_txn: Decimal
    sebi_fee: Decimal
    gst: Decimal
    stamp_duty: Decimal
    ipft: Decimal = _ZERO
    dp_charge: Decimal = _ZERO

    @property
    def total(self) -> Decimal:
        return (
            self.brokerage
            + self.stt
            + self.exchange_txn
            + self.sebi_fee
            + self.gst
            + self.stamp_duty
            + self.ipft
            + self.dp_charge
        )

    def __sub__(self, other: ChargeBreakdown) -> ChargeBreakdown:
        """Component-wise difference: what one more fill of an order adds to the order's charges."""
        return ChargeBreakdown(*(getattr(self, k) - getattr(other, k) for k in _FIELDS))

    def to_dict(self) -> dict[str, str]:
        return {k: str(getattr(self, k)) for k in (*_FIELDS, "total")}


_FIELDS = (
    "turnover",
    "brokerage",
    "stt",
    "exchange_txn",
    "sebi_fee",
    "gst",
    "stamp_duty",
    "ipft",
    "dp_charge",
)
ZERO_CHARGES = ChargeBreakdown(*(_ZERO,) * 9)


def _today() -> date:
    from backend.domain.market.calendar import IST

    return datetime.now(IST).date()


@dataclass(frozen=True, slots=True)
class ChargeSchedule:
    """Charge rates by segment and product, each version valid from its ``effective_from`` date.

    ``segments`` is the newest version (the one in force today for a current config); ``versions``
    holds every (effective_from, segments) pair, oldest first, so a trade or a backtest on a past
    date is charged the rates of that date (:meth:`segments_on`).
    """

    gst_pct: Decimal
    segments: Mapping[str, SegmentRates]
    stt_rounding: str = "paise"  # "paise" or "rupee" (some contract notes round STT to the rupee)
    versions: tuple[tuple[date, Mapping[str, SegmentRates]], ...] = ()
    gst_on: tuple[str, ...] = GST_COMPONENTS

    def segments_on(self, day: date | None = None) -> Mapping[str, SegmentRates]:
        """Rates in force on ``day`` (default: today, IST). A day before the first version uses it."""
        if not self.versions:
            return self.segments
        day = day or _today()
        chosen = self.versions[0][1]
        for start, segs in self.versions:
            if start <= day:
                chosen = segs
        return chosen

    def _rates(self, product: Product, segment: str, day: date | None) -> tuple[SegmentRates, ProductRates]:
        seg = self.segments_on(day).get(segment)
        if seg is None:
            raise ValidationFailed(
                f"no charge schedule for segment {segment!r}", details={"segment": segment}
            )
        rates = seg.products.get(Product(product))
        if rates is None:
            raise ValidationFailed(
                f"no charge schedule for product {product!r}", details={"product": product}
            )
        return seg, rates

    def order_charges(
        self,
        side: Side,
        product: Product,
        turnover: Decimal,
        segment: str = "EQ",
        *,
        on: date | None = None,
        dp: bool = True,
    ) -> ChargeBreakdown:
        """Charges of one executed ORDER of total traded value ``turnover`` (every fill together):
        one brokerage per order, as the broker's contract note shows it. ``dp``: this order is the
        scrip's first delivery sell of the day, so the depository charge applies (sell side, D)."""
        seg, rates = self._rates(product, segment, on)
        side = Side(side)
        if turnover <= 0:
            return ZERO_CHARGES
        if rates.brokerage_mode == "flat":
            brokerage = rates.brokerage_flat
        else:
            brokerage = turnover * rates.brokerage_pct / _HUNDRED
            if rates.brokerage_cap is not None:
                brokerage = min(brokerage, rates.brokerage_cap)
        brokerage = to_paise(brokerage)
        stt_pct = rates.stt_buy_pct if side is Side.BUY else rates.stt_sell_pct
        stt_raw = turnover * stt_pct / _HUNDRED
        stt = (
            stt_raw.quantize(RUPEE, rounding=ROUND_HALF_UP).quantize(PAISA)
            if self.stt_rounding == "rupee"
            else to_paise(stt_raw)
        )
        txn = to_paise(turnover * seg.exchange_txn_pct / _HUNDRED)
        sebi = to_paise(turnover * seg.sebi_fee_per_crore / _CRORE)
        ipft = to_paise(turnover * seg.ipft_per_crore / _CRORE)
        dp_charge = to_paise(rates.dp_per_scrip) if dp and side is Side.SELL else _ZERO
        parts = {
            "brokerage": brokerage,
            "exchange_txn": txn,
            "sebi_fee": sebi,
            "ipft": ipft,
            "dp_charge": dp_charge,
        }
        gst = to_paise(sum((parts[k] for k in self.gst_on), Decimal(0)) * self.gst_pct / _HUNDRED)
        stamp = to_paise(turnover * rates.stamp_buy_pct / _HUNDRED) if side is Side.BUY else _ZERO
        return ChargeBreakdown(to_paise(turnover), brokerage, stt, txn, sebi, gst, stamp, ipft, dp_charge)

    def estimate(
        self,
        side: Side,
        product: Product,
        qty: int,
        price: Decimal,
        segment: str = "EQ",
        *,
        on: date | None = None,
        dp: bool = True,
    ) -> ChargeBreakdown:
        """Charges of an order of ``qty`` at ``price`` executed in full (see :meth:`order_charges`)."""
        self._rates(Product(product), segment, on)  # unknown segment/product fail even for qty 0
        return self.order_charges(side, product, Decimal(qty) * price, segment, on=on, dp=dp)

    def fill_charges(
        self,
        side: Side,
        product: Product,
        filled_before: Decimal,
        fill_value: Decimal,
        segment: str = "EQ",
        *,
        on: date | None = None,
        dp: bool = True,
    ) -> ChargeBreakdown:
        """What one fill adds to its order's charges: the order's charges on its traded value after
        the fill minus those before it. Summed over the fills, the order pays exactly the contract
        note of one executed order (one brokerage, statutory charges on the total)."""
        after = self.order_charges(side, product, filled_before + fill_value, segment, on=on, dp=dp)
        if filled_before <= 0:
            return after
        return after - self.order_charges(side, product, filled_before, segment, on=on, dp=dp)

    @classmethod
    def default(cls) -> ChargeSchedule:
        """The NSE rates shipped in config/trading.yaml (kept in sync by a unit test)."""
        return load_trading_config(DEFAULT_CONFIG_PATH).charges


@dataclass(frozen=True, slots=True)
class TradingConfig:
    charges: ChargeSchedule
    risk: RiskLimits
    fills: FillConfig
    margin: MarginParams | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


class TradingConfigError(ValueError):
    """trading.yaml is missing a key or has a bad value; ``key`` is the dotted path."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"config/trading.yaml: {key}: {problem}")
        self.key = key


DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[2] / "config" / "trading.yaml"


def _get(node: Mapping[str, Any], key: str, path: str) -> Any:
    if not isinstance(node, Mapping) or key not in node:
        raise TradingConfigError(f"{path}.{key}" if path else key, "missing")
    return node[key]


def _number(v: Any, key: str) -> Decimal:
    if isinstance(v, bool) or v is None:
        raise TradingConfigError(key, f"expected a number, got {v!r}")
    try:
        d = Decimal(str(v))  # str() so YAML floats like 0.00297 keep their written digits
    except InvalidOperation:
        raise TradingConfigError(key, f"expected a number, got {v!r}") from None
    if not d.is_finite() or d < 0:
        raise TradingConfigError(key, f"expected a non-negative number, got {v!r}")
    return d


def _date(v: Any, key: str) -> date:
    if isinstance(v, date):
        return v
    try:
        return date.fromisoformat(str(v))
    except ValueError:
        raise TradingConfigError(key, f"expected a YYYY-MM-DD date, got {v!r}") from None


def _dated(v: Any, key: str) -> list[tuple[date, Decimal]]:
    """A rate: a number (always in force) or a list of ``{effective_from, value}``, oldest first."""
    if not isinstance(v, list):
        return [(date.min, _number(v, key))]
    if not v:
        raise TradingConfigError(key, "expected a number or a non-empty list of {effective_from, value}")
    out = []
    for i, item in enumerate(v):
        k = f"{key}[{i}]"
        if not isinstance(item, Mapping) or "effective_from" not in item or "value" not in item:
            raise TradingConfigError(k, "expected {effective_from: YYYY-MM-DD, value: number}")
        out.append(
            (_date(item["effective_from"], f"{k}.effective_from"), _number(item["value"], f"{k}.value"))
        )
    if [d for d, _ in out] != sorted({d for d, _ in out}):
        raise TradingConfigError(key, "effective_from dates must be strictly increasing")
    return out


def _dec(node: Mapping[str, Any], key: str, path: str, default: Any = ..., on: date | None = None) -> Decimal:
    """The value of ``key`` in force on ``on`` (None: the newest); a day before the first
    ``effective_from`` gets the first value."""
    if default is not ... and (not isinstance(node, Mapping) or key not in node):
        return default
    entries = _dated(_get(node, key, path), f"{path}.{key}")
    if on is None:
        return entries[-1][1]
    chosen = entries[0][1]
    for start, value in entries:
        if start <= on:
            chosen = value
    return chosen


def _effective_dates(node: Any) -> set[date]:
    """Every ``effective_from`` under ``node`` (dated rates anywhere in the charges tree)."""
    found: set[date] = set()
    if isinstance(node, Mapping):
        for v in node.values():
            found |= _effective_dates(v)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, Mapping) and "effective_from" in item:
                # already validated, with its key, by _parse_segments(..., None)
                found.add(_date(item["effective_from"], "effective_from"))
            else:
                found |= _effective_dates(item)
    return found


def _parse_product(node: Mapping[str, Any], path: str, on: date | None = None) -> ProductRates:
    mode = _get(node, "brokerage_mode", path)
    if mode not in ("flat", "percent"):
        raise TradingConfigError(f"{path}.brokerage_mode", f"must be 'flat' or 'percent', got {mode!r}")
    cap = node.get("brokerage_cap")
    zero = Decimal(0)
    return ProductRates(
        brokerage_mode=mode,
        brokerage_flat=_dec(node, "brokerage_flat", path, on=on) if mode == "flat" else zero,
        brokerage_pct=_dec(node, "brokerage_pct", path, on=on) if mode == "percent" else zero,
        brokerage_cap=None if cap is None else _dec(node, "brokerage_cap", path, on=on),
        stt_buy_pct=_dec(node, "stt_buy_pct", path, on=on),
        stt_sell_pct=_dec(node, "stt_sell_pct", path, on=on),
        stamp_buy_pct=_dec(node, "stamp_buy_pct", path, on=on),
        dp_per_scrip=_dec(node, "dp_per_scrip", path, zero, on=on),
        stt_exercise_pct=_dec(node, "stt_exercise_pct", path, zero, on=on),
    )


def _parse_segments(segs_node: Mapping[str, Any], on: date | None) -> dict[str, SegmentRates]:
    segments: dict[str, SegmentRates] = {}
    for seg_name, seg in segs_node.items():
        p = f"charges.segments.{seg_name}"
        prods = _get(seg, "products", p)
        if not isinstance(prods, Mapping):
            raise TradingConfigError(f"{p}.products", "expected a mapping")
        products: dict[Product, ProductRates] = {}
        for prod_name, prod in prods.items():
            try:
                product = Product(str(prod_name))
            except ValueError:
                raise TradingConfigError(
                    f"{p}.products.{prod_name}", "unknown product (use I or D)"
                ) from None
            products[product] = _parse_product(prod, f"{p}.products.{prod_name}", on)
        segments[str(seg_name)] = SegmentRates(
            exchange_txn_pct=_dec(seg, "exchange_txn_pct", p, on=on),
            sebi_fee_per_crore=_dec(seg, "sebi_fee_per_crore", p, on=on),
            products=products,
            ipft_per_crore=_dec(seg, "ipft_per_crore", p, Decimal(0), on=on),
        )
    return segments


def parse_charges(ch: Mapping[str, Any]) -> ChargeSchedule:
    segs_node = _get(ch, "segments", "charges")
    if not isinstance(segs_node, Mapping) or not segs_node:
        raise TradingConfigError("charges.segments", "expected a non-empty mapping")
    latest = _parse_segments(segs_node, None)  # validates every key once, names the bad one
    starts = sorted(_effective_dates(segs_node) | {date.min})
    versions = tuple((d, _parse_segments(segs_node, d)) for d in starts)
    stt_rounding = ch.get("stt_rounding", "paise")
    if stt_rounding not in ("paise", "rupee"):
        raise TradingConfigError("charges.stt_rounding", f"must be 'paise' or 'rupee', got {stt_rounding!r}")
    gst_on = ch.get("gst_on", list(GST_COMPONENTS))
    if not isinstance(gst_on, list) or any(c not in GST_COMPONENTS for c in gst_on):
        raise TradingConfigError("charges.gst_on", f"expected a list of {', '.join(GST_COMPONENTS)}")
    return ChargeSchedule(
        gst_pct=_dec(ch, "gst_pct", "charges"),
        segments=latest,
        stt_rounding=stt_rounding,
        versions=versions,
        gst_on=tuple(gst_on),
    )


def parse_trading_config(data: Mapping[str, Any]) -> TradingConfig:
    from backend.domain.orders.fills import FillConfig
    from backend.domain.risk.limits import coerce_limit, limits_from_mapping
    from backend.domain.risk.margin import parse_margin

    if not isinstance(data, Mapping):
        raise TradingConfigError("<root>", "expected a mapping")
    charges = parse_charges(_get(data, "charges", ""))
    margin = parse_margin(data.get("margin"), TradingConfigError)

    risk_node = data.get("risk", {}) or {}
    if not isinstance(risk_node, Mapping):
        raise TradingConfigError("risk", "expected a mapping")
    for k, v in risk_node.items():
        try:
            coerce_limit(k, v)
        except ValidationFailed as e:
            raise TradingConfigError(f"risk.{k}", e.details.get(k, e.message)) from None
    risk = limits_from_mapping(risk_node)

    fills_node = data.get("fills", {}) or {}
    partial = fills_node.get("partial_fills", False)
    if not isinstance(partial, bool):
        raise TradingConfigError("fills.partial_fills", f"expected true/false, got {partial!r}")
    dflt = FillConfig()
    fills = FillConfig(
        slippage_bps=_dec(fills_node, "slippage_bps", "fills", dflt.slippage_bps),
        market_collar_pct=_dec(fills_node, "market_collar_pct", "fills", dflt.market_collar_pct),
        partial_fills=partial,
        max_volume_fraction=_dec(fills_node, "max_volume_fraction", "fills", dflt.max_volume_fraction),
    )
    if not (0 < fills.max_volume_fraction <= 1):
        raise TradingConfigError("fills.max_volume_fraction", "must be in (0, 1]")
    return TradingConfig(charges=charges, risk=risk, fills=fills, margin=margin, raw=data)


def load_trading_config(path: str | Path = DEFAULT_CONFIG_PATH) -> TradingConfig:
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    return parse_trading_config(data)


def estimate(
    side: Side,
    product: Product,
    qty: int,
    price: Decimal,
    segment: str = "EQ",
    schedule: ChargeSchedule | None = None,
    *,
    on: date | None = None,
    dp: bool = True,
) -> ChargeBreakdown:
    """Charges for one executed order; uses the shipped config/trading.yaml schedule unless given one."""
    return (schedule or _default_schedule()).estimate(side, product, qty, price, segment, on=on, dp=dp)


def charge_segment(segment: str, instrument_type: str | None = None) -> str:
    """The charge schedule's segment key of an instrument: ``EQ`` for cash equity, ``FO`` for
    options, ``FUT`` for futures. Market data names segments like Upstox (``NSE_EQ``, ``NSE_FO``);
    the instrument type tells a future from an option, since both sit in ``NSE_FO``."""
    short = segment.split("_", 1)[1] if "_" in segment else segment
    if short == "FO" and (instrument_type or "").upper() in ("FUT", "FUTIDX", "FUTSTK"):
        return "FUT"
    return short


_CACHE: dict[str, ChargeSchedule] = {}


def _default_schedule() -> ChargeSchedule:
    if "default" not in _CACHE:
        _CACHE["default"] = ChargeSchedule.default()
    return _CACHE["default"]
