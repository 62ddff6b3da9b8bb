"""Transaction cost model (brokerage + Indian statutory charges) and the trading.yaml loader.

Each component is computed on the order's turnover and rounded to the paisa (half-up), the way a
contract note shows it; GST is then 18% of the *rounded* brokerage + exchange charge + SEBI fee.
Rates live in config/trading.yaml, never in code; ``ChargeSchedule.default()`` mirrors that file for tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from backend.domain.errors import ValidationFailed
from backend.domain.orders.types import Product, Side

if TYPE_CHECKING:
    from backend.domain.orders.fills import FillConfig
    from backend.domain.risk.limits import RiskLimits

PAISA = Decimal("0.01")
RUPEE = Decimal("1")
_HUNDRED = Decimal(100)
_CRORE = Decimal(10_000_000)


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


@dataclass(frozen=True, slots=True)
class SegmentRates:
    exchange_txn_pct: Decimal
    sebi_fee_per_crore: Decimal
    products: Mapping[Product, ProductRates]


@dataclass(frozen=True, slots=True)
class ChargeBreakdown:
    turnover: Decimal
    brokerage: Decimal
    stt: Decimal
    exchange_txn: Decimal
    sebi_fee: Decimal
    gst: Decimal
    stamp_duty: Decimal

    @property
    def total(self) -> Decimal:
        return self.brokerage + self.stt + self.exchange_txn + self.sebi_fee + self.gst + self.stamp_duty

    def to_dict(self) -> dict[str, str]:
        keys = ("turnover", "brokerage", "stt", "exchange_txn", "sebi_fee", "gst", "stamp_duty", "total")
        return {k: str(getattr(self, k)) for k in keys}


ZERO_CHARGES = ChargeBreakdown(*(Decimal("0.00"),) * 7)


@dataclass(frozen=True, slots=True)
class ChargeSchedule:
    gst_pct: Decimal
    segments: Mapping[str, SegmentRates]
    stt_rounding: str = "paise"  # "paise" or "rupee" (some contract notes round STT to the rupee)

    def estimate(
        self, side: Side, product: Product, qty: int, price: Decimal, segment: str = "EQ"
    ) -> ChargeBreakdown:
        seg = self.segments.get(segment)
        if seg is None:
            raise ValidationFailed(
                f"no charge schedule for segment {segment!r}", details={"segment": segment}
            )
        rates = seg.products.get(Product(product))
        if rates is None:
            raise ValidationFailed(
                f"no charge schedule for product {product!r}", details={"product": product}
            )
        side = Side(side)
        turnover = Decimal(qty) * price
        if rates.brokerage_mode == "flat":
            brokerage = rates.brokerage_flat if qty > 0 else Decimal(0)
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
        gst = to_paise((brokerage + txn + sebi) * self.gst_pct / _HUNDRED)
        stamp = to_paise(turnover * rates.stamp_buy_pct / _HUNDRED) if side is Side.BUY else Decimal("0.00")
        return ChargeBreakdown(to_paise(turnover), brokerage, stt, txn, sebi, gst, stamp)

    @classmethod
    def default(cls) -> ChargeSchedule:
        """The NSE equity rates shipped in config/trading.yaml (kept in sync by a unit test)."""
        return load_trading_config(DEFAULT_CONFIG_PATH).charges


@dataclass(frozen=True, slots=True)
class TradingConfig:
    charges: ChargeSchedule
    risk: RiskLimits
    fills: FillConfig
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


def _dec(node: Mapping[str, Any], key: str, path: str, default: Any = ...) -> Decimal:
    if default is not ... and (not isinstance(node, Mapping) or key not in node):
        return default
    v = _get(node, key, path)
    if isinstance(v, bool) or v is None:
        raise TradingConfigError(f"{path}.{key}", f"expected a number, got {v!r}")
    try:
        d = Decimal(str(v))  # str() so YAML floats like 0.00297 keep their written digits
    except InvalidOperation:
        raise TradingConfigError(f"{path}.{key}", f"expected a number, got {v!r}") from None
    if not d.is_finite() or d < 0:
        raise TradingConfigError(f"{path}.{key}", f"expected a non-negative number, got {v!r}")
    return d


def _parse_product(node: Mapping[str, Any], path: str) -> ProductRates:
    mode = _get(node, "brokerage_mode", path)
    if mode not in ("flat", "percent"):
        raise TradingConfigError(f"{path}.brokerage_mode", f"must be 'flat' or 'percent', got {mode!r}")
    cap = node.get("brokerage_cap")
    return ProductRates(
        brokerage_mode=mode,
        brokerage_flat=_dec(node, "brokerage_flat", path) if mode == "flat" else Decimal(0),
        brokerage_pct=_dec(node, "brokerage_pct", path) if mode == "percent" else Decimal(0),
        brokerage_cap=None if cap is None else _dec(node, "brokerage_cap", path),
        stt_buy_pct=_dec(node, "stt_buy_pct", path),
        stt_sell_pct=_dec(node, "stt_sell_pct", path),
        stamp_buy_pct=_dec(node, "stamp_buy_pct", path),
    )


def parse_trading_config(data: Mapping[str, Any]) -> TradingConfig:
    from backend.domain.orders.fills import FillConfig
    from backend.domain.risk.limits import coerce_limit, limits_from_mapping

    if not isinstance(data, Mapping):
        raise TradingConfigError("<root>", "expected a mapping")
    ch = _get(data, "charges", "")
    segs_node = _get(ch, "segments", "charges")
    if not isinstance(segs_node, Mapping) or not segs_node:
        raise TradingConfigError("charges.segments", "expected a non-empty mapping")
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
            products[product] = _parse_product(prod, f"{p}.products.{prod_name}")
        segments[str(seg_name)] = SegmentRates(
            exchange_txn_pct=_dec(seg, "exchange_txn_pct", p),
            sebi_fee_per_crore=_dec(seg, "sebi_fee_per_crore", p),
            products=products,
        )
    stt_rounding = ch.get("stt_rounding", "paise")
    if stt_rounding not in ("paise", "rupee"):
        raise TradingConfigError("charges.stt_rounding", f"must be 'paise' or 'rupee', got {stt_rounding!r}")
    charges = ChargeSchedule(
        gst_pct=_dec(ch, "gst_pct", "charges"), segments=segments, stt_rounding=stt_rounding
    )

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
    return TradingConfig(charges=charges, risk=risk, fills=fills, raw=data)


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
) -> ChargeBreakdown:
    """Charges for one executed order; uses the shipped config/trading.yaml schedule unless given one."""
    return (schedule or _default_schedule()).estimate(side, product, qty, price, segment)


_CACHE: dict[str, ChargeSchedule] = {}


def _default_schedule() -> ChargeSchedule:
    if "default" not in _CACHE:
        _CACHE["default"] = ChargeSchedule.default()
    return _CACHE["default"]
