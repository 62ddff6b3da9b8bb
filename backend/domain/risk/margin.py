"""F&O margin: an exposure-plus-scan (SPAN-like) approximation, pure and deterministic.

The exchange's initial margin for index derivatives is SPAN plus exposure (extreme loss) margin
(NSE Clearing, "SPAN risk parameters"). This module approximates it for a portfolio of option,
future and stock legs on one underlying:

* **scan risk**: the portfolio is revalued (Black-Scholes on the spot) at seven price
  scenarios between -price_scan and +price_scan (thirds), each with the volatility up and down by
  ``volatility_scan``, plus two extreme moves of ``extreme_move_multiple`` x price_scan of which
  ``extreme_move_cover_pct`` counts, as SPAN does. The worst loss is the scan risk.
* the **net option value** (long options' value minus short options' value, at today's prices)
  is deducted, as SPAN does: a written option needs its own current value on top of the scan loss
  (the premium received is credited to cash, so the cash it costs is the scan loss), and a long
  option's premium, already paid, covers its own loss;
* the result never falls under the **short option minimum**: ``short_option_minimum_pct`` of the
  notional (spot x quantity) of short options not covered one for one by long options of the
  same type;
* **exposure margin** is ``exposure_pct`` of the notional of those uncovered short options and
  of every future.

A hedged structure priced as one portfolio (an iron condor placed as one basket) therefore gets
its defined-risk margin: the scan loss is bounded by the wings and nothing is left uncovered.
This is an estimate of the exchange's margin, not the clearing corporation's SPAN file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from backend.domain.errors import ValidationFailed
from backend.domain.options.pricing import bs_price, implied_vol

CENT = Decimal("0.01")
_HUNDRED = Decimal(100)
KINDS = ("CE", "PE", "FUT", "EQ")


@dataclass(frozen=True, slots=True)
class MarginParams:
    """Parameters of the model (config/trading.yaml ``margin``; sources cited there)."""

    price_scan_pct: Decimal = Decimal("9.3")  # % of the underlying price
    volatility_scan: Decimal = Decimal("4")  # volatility points (4 = 0.04 of annualised vol)
    extreme_move_multiple: Decimal = Decimal("2")
    extreme_move_cover_pct: Decimal = Decimal("35")
    short_option_minimum_pct: Decimal = Decimal("3")  # % of notional of uncovered short options
    exposure_pct: Decimal = Decimal("2")  # % of notional: uncovered short options and futures
    rate: Decimal = Decimal("0.065")  # annual rate for option revaluation
    fallback_iv: Decimal = Decimal("0.15")  # when an option's price implies no volatility


@dataclass(frozen=True, slots=True)
class MarginLeg:
    """One leg: ``kind`` CE | PE | FUT | EQ, ``side`` +1 long / -1 short, ``price`` the current
    premium (options), futures price (FUT) or stock price (EQ). ``iv`` None: implied from price."""

    kind: str
    side: int
    quantity: int
    price: Decimal
    strike: Decimal | None = None
    iv: float | None = None
    t_years: float | None = None  # this leg's time to expiry (None: the portfolio's)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValidationFailed(f"margin leg kind must be one of {KINDS}", {"kind": self.kind})
        if self.side not in (1, -1) or self.quantity <= 0:
            raise ValidationFailed("margin leg needs side +1/-1 and a positive quantity")
        if self.kind in ("CE", "PE") and (self.strike is None or self.strike <= 0):
            raise ValidationFailed("option legs need a positive strike", {"strike": self.strike})


@dataclass(frozen=True, slots=True)
class MarginResult:
    scan_risk: Decimal  # worst scenario loss against today's values (>= 0)
    net_option_value: Decimal  # long options' value minus short options' value, today
    short_option_minimum: Decimal
    span: Decimal  # max(scan_risk - net_option_value, short_option_minimum, 0)
    exposure: Decimal
    total: Decimal  # span + exposure

    def to_dict(self) -> dict[str, str]:
        keys = ("scan_risk", "net_option_value", "short_option_minimum", "span", "exposure", "total")
        return {k: str(getattr(self, k)) for k in keys}


ZERO_MARGIN = MarginResult(*(Decimal("0.00"),) * 6)


def _money(x: float | Decimal) -> Decimal:
    return Decimal(str(x)).quantize(CENT, rounding=ROUND_HALF_UP)


def leg_iv(leg: MarginLeg, spot: float, t_years: float, params: MarginParams) -> float:
    if leg.iv is not None and leg.iv > 0:
        return float(leg.iv)
    if t_years > 0 and leg.price > 0:
        try:
            return implied_vol(leg.price, spot, leg.strike, t_years, float(params.rate), leg.kind)
        except ValidationFailed:
            pass  # price below intrinsic or beyond the solver: use the fallback
    return float(params.fallback_iv)


def _uncovered_shorts(legs: Sequence[MarginLeg]) -> tuple[int, int]:
    """(uncovered short calls, uncovered short puts): long options of the same type cover one for
    one, long stock or long futures cover short calls, short futures cover short puts."""

    def qty(kind: str, side: int) -> int:
        return sum(leg.quantity for leg in legs if leg.kind == kind and leg.side == side)

    calls = qty("CE", -1) - qty("CE", 1) - qty("EQ", 1) - qty("FUT", 1)
    puts = qty("PE", -1) - qty("PE", 1) - qty("FUT", -1)
    return max(calls, 0), max(puts, 0)


def portfolio_margin(
    legs: Sequence[MarginLeg], spot: Decimal, t_years: float, params: MarginParams
) -> MarginResult:
    """Margin of ``legs`` on one underlying at ``spot``, ``t_years`` before the options' expiry."""
    if not legs:
        return ZERO_MARGIN
    if spot <= 0:
        raise ValidationFailed("margin needs a positive underlying price", {"spot": str(spot)})
    s = float(spot)
    t = max(float(t_years), 0.0)
    rate = float(params.rate)
    psr = float(params.price_scan_pct) / 100.0
    vsr = float(params.volatility_scan) / 100.0
    moves = [k / 3.0 * psr for k in range(-3, 4)]
    scenarios = [(m, dv, 1.0) for m in moves for dv in (vsr, -vsr)]
    ext = float(params.extreme_move_multiple) * psr
    cover = float(params.extreme_move_cover_pct) / 100.0
    scenarios += [(ext, 0.0, cover), (-ext, 0.0, cover)]

    worst = 0.0
    nov = 0.0
    ts = {i: t if leg.t_years is None else max(float(leg.t_years), 0.0) for i, leg in enumerate(legs)}
    ivs = {i: leg_iv(leg, s, ts[i], params) for i, leg in enumerate(legs) if leg.kind in ("CE", "PE")}
    now_values: dict[int, float] = {}
    for i, leg in enumerate(legs):
        if leg.kind in ("CE", "PE"):
            v = bs_price(s, leg.strike, ts[i], rate, ivs[i], leg.kind)
            now_values[i] = v
            nov += leg.side * leg.quantity * v
    for move, dv, weight in scenarios:
        s1 = s * (1.0 + move)
        pnl = 0.0
        for i, leg in enumerate(legs):
            w = leg.side * leg.quantity
            if leg.kind in ("CE", "PE"):
                vol = max(ivs[i] + dv, 0.01)
                v1 = bs_price(s1, leg.strike, ts[i], rate, vol, leg.kind)
                pnl += w * (v1 - now_values[i])
            else:  # futures and stock move with the underlying
                pnl += w * float(leg.price) * move
        worst = max(worst, -pnl * weight)
    calls, puts = _uncovered_shorts(legs)
    uncovered = calls + puts
    somc = float(params.short_option_minimum_pct) / 100.0 * s * uncovered
    futures_notional = sum(float(leg.price) * leg.quantity for leg in legs if leg.kind == "FUT")
    exposure = float(params.exposure_pct) / 100.0 * (s * uncovered + futures_notional)
    span = max(worst - nov, somc, 0.0)
    span_d, exp_d = _money(span), _money(exposure)
    return MarginResult(_money(worst), _money(nov), _money(somc), span_d, exp_d, span_d + exp_d)


def allocate(
    total: Decimal, legs: Sequence[MarginLeg], spot: Decimal, t_years: float, params: MarginParams
) -> list[Decimal]:
    """Split a portfolio margin over its legs in proportion to each leg's own margin (legs that
    need none alone, such as long options, get none); the parts add up to ``total`` exactly."""
    if not legs:
        return []
    alone = [portfolio_margin([leg], spot, t_years, params).total for leg in legs]
    weight = sum(alone, Decimal(0))
    if weight <= 0:
        return [total] + [Decimal("0.00")] * (len(legs) - 1)
    parts = [(total * a / weight).quantize(CENT, rounding=ROUND_HALF_UP) for a in alone]
    biggest = max(range(len(parts)), key=lambda i: alone[i])
    parts[biggest] += total - sum(parts, Decimal(0))  # rounding remainder on the largest part
    return parts


def parse_margin(node: Mapping[str, Any] | None, error: type[Exception]) -> MarginParams:
    """``margin`` section of config/trading.yaml; ``error(key, problem)`` names a bad key."""
    dflt = MarginParams()
    if node is None:
        return dflt
    if not isinstance(node, Mapping):
        raise error("margin", "expected a mapping")
    values: dict[str, Decimal] = {}
    for key in MarginParams.__dataclass_fields__:
        if key not in node:
            continue
        raw = node[key]
        try:
            d = Decimal(str(raw))
        except ArithmeticError:
            raise error(f"margin.{key}", f"expected a number, got {raw!r}") from None
        if isinstance(raw, bool) or not d.is_finite() or d < 0:
            raise error(f"margin.{key}", f"expected a non-negative number, got {raw!r}")
        values[key] = d
    unknown = sorted(set(node) - set(MarginParams.__dataclass_fields__) - {"sources"})
    if unknown:
        raise error(f"margin.{unknown[0]}", "unknown key")
    params = MarginParams(**{**{k: getattr(dflt, k) for k in MarginParams.__dataclass_fields__}, **values})
    if params.price_scan_pct <= 0:
        raise error("margin.price_scan_pct", "must be positive")
    return params
