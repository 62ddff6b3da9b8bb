"""Options strategies: multi-leg structures built from an option chain and analysed.

Each strategy is declared as data: a tuple of :class:`LegSpec` (instrument, side, ratio,
strike offset from ATM in strike steps, optional explicit-strike parameter). One generic
engine (:class:`OptionsStrategy`) resolves strikes against the chain and
:func:`analyse_legs` computes payoff curves, max profit/loss, breakevens, net premium,
position greeks and the F&O margin (backend/domain/risk/margin.py). See docs/options.md for the conventions.

Sign conventions of the result:

* ``net_premium`` > 0 is a net debit (cash paid, stock purchases included), < 0 a credit.
* ``max_profit`` is the largest expiry P&L; ``max_loss`` is the largest expiry loss as a
  positive amount. Either is ``None`` when unbounded (the underlying can rise without limit).
* Greeks are for the whole position, in rupees: delta = P&L per 1 point of underlying,
  gamma = change of that delta per point, theta = P&L per calendar day, vega = P&L per vol point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

import numpy as np
from marshmallow import Schema, ValidationError, fields, validate

from backend.domain.errors import ValidationFailed
from backend.domain.options.analytics import atm_iv, atm_strike
from backend.domain.options.chain import ChainRow, OptionLeg
from backend.domain.options.pricing import bs_greeks, bs_price_array, implied_vol
from backend.domain.risk.margin import MarginLeg, MarginParams, portfolio_margin
from backend.domain.strategies.base import Strategy
from backend.domain.strategies.registry import register

__all__ = [
    "DEFAULT_RATE",
    "LegSpec",
    "StrategyLeg",
    "PayoffChart",
    "StrategyAnalysis",
    "OptionsStrategy",
    "analyse_legs",
    "IronCondor",
    "BullCallSpread",
    "BearPutSpread",
    "LongStraddle",
    "ShortStrangle",
    "Butterfly",
    "CoveredCall",
    "ProtectivePut",
]

DEFAULT_RATE = 0.065  # annual risk-free rate used for "today" valuation when none is given
CENT = Decimal("0.01")

INSTRUMENTS = ("CE", "PE", "EQ")
SIDES = ("BUY", "SELL")


def _plain(value: Decimal) -> str:
    """A decimal as plain text: ``31450``, never ``3.145E+4`` (str() switches to exponents)."""
    return format(value if isinstance(value, Decimal) else Decimal(str(value)), "f")


def _money(x: Decimal | float | int) -> Decimal:
    d = x if isinstance(x, Decimal) else Decimal(str(x))
    return d.quantize(CENT, rounding=ROUND_HALF_UP)


# --------------------------------------------------------------------------- value types


@dataclass(frozen=True, slots=True)
class LegSpec:
    """Declarative leg of a strategy.

    The strike is the listed strike ``sum(coef * params[name] for name, coef in offset)``
    steps away from the ATM strike (steps are positions in the sorted strike list), unless
    ``strike_param`` names a param holding an explicit strike. ``EQ`` legs have no strike.
    """

    instrument: str
    side: str
    ratio: int = 1
    offset: tuple[tuple[str, int], ...] = ()
    strike_param: str | None = None

    @property
    def sign(self) -> int:
        return 1 if self.side == "BUY" else -1


@dataclass(frozen=True, slots=True)
class StrategyLeg:
    """A concrete leg: ``quantity`` units (lots x lot size x ratio) at ``premium`` per unit."""

    instrument: str  # CE | PE | EQ
    strike: Decimal | None
    side: str  # BUY | SELL
    quantity: int
    premium: Decimal
    iv: float = 0.0  # annualised fraction, used for the "today" valuation (0 for EQ)

    def __post_init__(self) -> None:
        if self.instrument not in INSTRUMENTS:
            raise ValidationFailed(
                f"instrument must be one of {INSTRUMENTS}", {"instrument": self.instrument}
            )
        if self.side not in SIDES:
            raise ValidationFailed(f"side must be one of {SIDES}", {"side": self.side})
        if self.quantity <= 0:
            raise ValidationFailed("quantity must be positive", {"quantity": self.quantity})
        if self.instrument != "EQ" and (self.strike is None or self.strike <= 0):
            raise ValidationFailed("option legs need a positive strike", {"strike": self.strike})

    @property
    def sign(self) -> int:
        return 1 if self.side == "BUY" else -1

    def to_dict(self) -> dict[str, Any]:
        return {
            "instrument": self.instrument,
            "strike": None if self.strike is None else _plain(self.strike),
            "side": self.side,
            "quantity": self.quantity,
            "premium": _plain(_money(self.premium)),
            "iv": self.iv,
        }


@dataclass(frozen=True, slots=True)
class PayoffChart:
    prices: list[float]
    expiry: list[float]
    today: list[float]

    def to_dict(self) -> dict[str, list[float]]:
        return {"prices": self.prices, "expiry": self.expiry, "today": self.today}


@dataclass(frozen=True, slots=True)
class StrategyAnalysis:
    legs: tuple[StrategyLeg, ...]
    spot: Decimal
    t_years: float
    rate: float
    net_premium: Decimal  # > 0 debit paid, < 0 credit received
    max_profit: Decimal | None  # None = unlimited
    max_loss: Decimal | None  # positive amount; None = unlimited
    breakevens: list[Decimal]
    delta: float
    gamma: float
    theta: float
    vega: float
    margin: Decimal  # F&O margin of the option legs as one basket (scan + exposure)
    margin_method: str  # "span_exposure"
    chart: PayoffChart
    strategy: str = ""
    underlying: str = ""
    expiry: date | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    margin_detail: dict[str, str] = field(default_factory=dict)  # scan_risk, minimum, span, exposure

    @property
    def premium_type(self) -> str:
        return "debit" if self.net_premium > 0 else "credit" if self.net_premium < 0 else "even"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: money as strings, unbounded values as ``"unlimited"``."""
        return {
            "strategy": self.strategy,
            "underlying": self.underlying,
            "expiry": self.expiry.isoformat() if self.expiry else None,
            "spot": _plain(self.spot),
            "t_years": self.t_years,
            "rate": self.rate,
            "legs": [leg.to_dict() for leg in self.legs],
            "net_premium": _plain(self.net_premium),
            "premium_type": self.premium_type,
            "max_profit": "unlimited" if self.max_profit is None else _plain(self.max_profit),
            "max_loss": "unlimited" if self.max_loss is None else _plain(self.max_loss),
            "breakevens": [_plain(b) for b in self.breakevens],
            "greeks": {"delta": self.delta, "gamma": self.gamma, "theta": self.theta, "vega": self.vega},
            "margin": _plain(self.margin),
            "margin_method": self.margin_method,
            "margin_detail": dict(self.margin_detail),
            "chart": self.chart.to_dict(),
        }


# --------------------------------------------------------------------------- analysis engine


def _expiry_value(leg: StrategyLeg, s: Decimal) -> Decimal:
    """Exact (Decimal) expiry P&L of one leg when the underlying settles at ``s``."""
    if leg.instrument == "EQ":
        value = s
    elif leg.instrument == "CE":
        value = max(s - leg.strike, Decimal(0))  # type: ignore[operator]
    else:
        value = max(leg.strike - s, Decimal(0))  # type: ignore[operator]
    return leg.sign * leg.quantity * (value - leg.premium)


def _payoff_at(legs: Sequence[StrategyLeg], s: Decimal) -> Decimal:
    return sum((_expiry_value(leg, s) for leg in legs), Decimal(0))


def _right_slope(legs: Sequence[StrategyLeg]) -> int:
    """d(payoff)/dS beyond the highest strike: calls and stock count, puts are worthless there."""
    return sum(leg.sign * leg.quantity for leg in legs if leg.instrument in ("CE", "EQ"))


def _breakevens(legs: Sequence[StrategyLeg], kinks: list[Decimal]) -> list[Decimal]:
    """Zeros of the piecewise-linear expiry payoff (exact: interpolation between kinks)."""
    pts = [Decimal(0)] + [k for k in kinks if k > 0]
    vals = [_payoff_at(legs, p) for p in pts]
    roots: list[Decimal] = []

    def add(x: Decimal) -> None:
        x = _money(x)
        if x not in roots:
            roots.append(x)

    for i, (x, v) in enumerate(zip(pts, vals, strict=True)):
        if v == 0 and x > 0:
            add(x)
        if i + 1 < len(pts):
            x1, v1 = pts[i + 1], vals[i + 1]
            if (v < 0 < v1) or (v1 < 0 < v):
                add(x + (x1 - x) * v / (v - v1))
    slope = _right_slope(legs)
    last_x, last_v = pts[-1], vals[-1]
    if slope != 0 and last_v != 0 and (last_v > 0) != (slope > 0):
        add(last_x - last_v / slope)
    return sorted(roots)


def _leg_greeks(leg: StrategyLeg, spot: float, t: float, rate: float) -> tuple[float, float, float, float]:
    if leg.instrument == "EQ":
        return 1.0, 0.0, 0.0, 0.0
    g = bs_greeks(spot, leg.strike, t, rate, leg.iv, leg.instrument)
    return g.delta, g.gamma, g.theta, g.vega


def _grid(legs: Sequence[StrategyLeg], spot: Decimal, points: int, span: float) -> np.ndarray:
    refs = [float(spot)] + [float(leg.strike) for leg in legs if leg.strike is not None]
    lo = max(min(refs) * (1.0 - span), 1e-6)
    hi = max(refs) * (1.0 + span)
    # Include strikes and spot exactly so the kinks of the expiry line are drawn sharp.
    return np.unique(np.concatenate([np.linspace(lo, hi, points), np.asarray(refs)]))


def analyse_legs(
    legs: Sequence[StrategyLeg],
    spot: Decimal,
    t_years: float,
    rate: float = DEFAULT_RATE,
    margin: MarginParams | None = None,
    *,
    grid_points: int = 201,
    grid_span: float = 0.2,
) -> StrategyAnalysis:
    """Analyse any list of legs (named strategies call this; so can a custom builder).

    Margin is the F&O margin of the option legs placed together as one basket, from the same
    model the risk coordinator blocks on placement (backend/domain/risk/margin.py: scan risk plus
    exposure, never under the short option minimum), so what ``analyze`` shows is what ``place``
    blocks. Stock legs are bought with cash (``net_premium``), not margined. ``margin`` None: the
    model's default parameters (those shipped in config/trading.yaml).
    """
    if not legs:
        raise ValidationFailed("a strategy needs at least one leg")
    spot = Decimal(spot)
    t = max(float(t_years), 0.0)
    s_f = float(spot)

    net_premium = _money(sum((leg.sign * leg.quantity * leg.premium for leg in legs), Decimal(0)))

    kinks = sorted({leg.strike for leg in legs if leg.strike is not None})
    candidates = [Decimal(0)] + kinks
    values = [_payoff_at(legs, x) for x in candidates]
    slope = _right_slope(legs)
    max_profit = None if slope > 0 else _money(max(values))
    max_loss = None if slope < 0 else _money(-min(values))
    breakevens = _breakevens(legs, kinks)

    delta = gamma = theta = vega = 0.0
    for leg in legs:
        d, g, th, v = _leg_greeks(leg, s_f, t, rate)
        w = leg.sign * leg.quantity
        delta += w * d
        gamma += w * g
        theta += w * th
        vega += w * v

    option_legs = [
        MarginLeg(leg.instrument, leg.sign, leg.quantity, leg.premium, leg.strike, leg.iv or None)
        for leg in legs
        if leg.instrument in ("CE", "PE")
    ]
    margin_result = portfolio_margin(option_legs, spot, t, margin or MarginParams())

    grid = _grid(legs, spot, grid_points, grid_span)
    expiry_curve = np.zeros_like(grid)
    today_curve = np.zeros_like(grid)
    for leg in legs:
        w = leg.sign * leg.quantity
        prem = float(leg.premium)
        if leg.instrument == "EQ":
            expiry_curve += w * (grid - prem)
            today_curve += w * (grid - prem)
            continue
        k = float(leg.strike)  # type: ignore[arg-type]
        intrinsic = np.maximum(grid - k, 0.0) if leg.instrument == "CE" else np.maximum(k - grid, 0.0)
        expiry_curve += w * (intrinsic - prem)
        today_curve += w * (bs_price_array(grid, k, t, rate, leg.iv, leg.instrument) - prem)

    return StrategyAnalysis(
        legs=tuple(legs),
        spot=spot,
        t_years=t,
        rate=rate,
        net_premium=net_premium,
        max_profit=max_profit,
        max_loss=max_loss,
        breakevens=breakevens,
        delta=delta,
        gamma=gamma,
        theta=theta,
        vega=vega,
        margin=margin_result.total,
        margin_method="span_exposure",
        chart=PayoffChart(grid.tolist(), expiry_curve.tolist(), today_curve.tolist()),
        margin_detail=margin_result.to_dict(),
    )


# --------------------------------------------------------------------------- strategies


class BaseOptionsParams(Schema):
    underlying = fields.String(required=True, validate=validate.Length(min=1, max=64))
    expiry = fields.Date(required=True)
    lots = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10_000))


def _offset(default: int, minimum: int = 0) -> fields.Integer:
    return fields.Integer(load_default=default, validate=validate.Range(min=minimum, max=50))


def _positive(value: Decimal) -> None:
    # A function, not validate.Range: apispec would copy a Decimal bound into the JSON schema.
    if value is not None and value <= 0:
        raise ValidationError("Must be greater than 0.")


def _explicit_strike() -> fields.Decimal:
    return fields.Decimal(load_default=None, allow_none=True, validate=_positive)


IST = timezone(timedelta(hours=5, minutes=30))  # India has no DST, a fixed offset is exact
EXPIRY_CLOSE = time(15, 30)  # NSE options expire at the session close


def _year_fraction(expiry: date, as_of: date | datetime) -> float:
    """Calendar time to expiry in years (365-day year).

    A ``datetime`` counts to 15:30 IST on expiry day to the second (naive = IST), so expiry-day
    positions keep their time value; a bare ``date`` counts whole days.
    """
    if isinstance(as_of, datetime):
        now = as_of if as_of.tzinfo is not None else as_of.replace(tzinfo=IST)
        close = datetime.combine(expiry, EXPIRY_CLOSE, tzinfo=IST)
        return max((close - now).total_seconds(), 0.0) / (365.0 * 86400.0)
    return max((expiry - as_of).days, 0) / 365.0


class OptionsStrategy(Strategy):
    """Generic engine: subclasses only declare ``legs`` (and ``ascending`` strike checks)."""

    kind: ClassVar[str] = "options"
    legs: ClassVar[tuple[LegSpec, ...]] = ()
    # Groups of leg indices whose resolved strikes must be strictly ascending.
    ascending: ClassVar[tuple[tuple[int, ...], ...]] = ()

    def resolve_strikes(self, rows: Sequence[ChainRow], spot: Decimal) -> list[Decimal | None]:
        strikes = sorted({r.strike for r in rows})
        atm = atm_strike(rows, spot)
        if atm is None:
            raise ValidationFailed("option chain is empty")
        atm_idx = strikes.index(atm)
        out: list[Decimal | None] = []
        for spec in self.legs:
            if spec.instrument == "EQ":
                out.append(None)
                continue
            explicit = self.params.get(spec.strike_param) if spec.strike_param else None
            if explicit is not None:
                strike = Decimal(explicit)
                if strike not in strikes:
                    raise ValidationFailed(
                        f"strike {strike} is not listed in the chain",
                        {spec.strike_param: [f"strike {strike} not in chain"]},
                    )
                out.append(strike)
                continue
            steps = sum(coef * int(self.params[name]) for name, coef in spec.offset)
            idx = atm_idx + steps
            if not 0 <= idx < len(strikes):
                raise ValidationFailed(
                    f"{spec.instrument} strike {steps:+d} steps from ATM {atm} is outside the chain",
                    {"atm": _plain(atm), "steps": steps, "available": len(strikes)},
                )
            out.append(strikes[idx])
        for group in self.ascending:
            chosen = [out[i] for i in group]
            if any(a >= b for a, b in zip(chosen, chosen[1:], strict=False)):  # type: ignore[operator]
                raise ValidationFailed(
                    f"strikes for {self.name} must be strictly ascending",
                    {"strikes": [_plain(s) for s in chosen]},
                )
        return out

    def build_legs(
        self,
        rows: Sequence[ChainRow],
        spot: Decimal,
        lot_size: int,
        *,
        t_years: float = 0.0,
        rate: float = DEFAULT_RATE,
    ) -> list[StrategyLeg]:
        """Concrete legs priced at each option's LTP (stock at ``spot``)."""
        if lot_size <= 0:
            raise ValidationFailed("lot_size must be positive", {"lot_size": lot_size})
        spot = Decimal(spot)
        by_strike = {r.strike: r for r in rows}
        fallback_iv = atm_iv(rows, spot)
        lots = int(self.params.get("lots", 1))
        legs: list[StrategyLeg] = []
        for spec, strike in zip(self.legs, self.resolve_strikes(rows, spot), strict=True):
            qty = spec.ratio * lots * lot_size
            if spec.instrument == "EQ":
                legs.append(StrategyLeg("EQ", None, spec.side, qty, spot, 0.0))
                continue
            assert strike is not None
            quote: OptionLeg | None = (
                by_strike[strike].call if spec.instrument == "CE" else by_strike[strike].put
            )
            if quote is None:
                raise ValidationFailed(
                    f"no {spec.instrument} listed at strike {strike}", {"strike": _plain(strike)}
                )
            iv = _leg_iv(quote, spot, strike, t_years, rate, spec.instrument, fallback_iv)
            legs.append(StrategyLeg(spec.instrument, strike, spec.side, qty, Decimal(quote.ltp), iv))
        return legs

    def analyse(
        self,
        rows: Sequence[ChainRow],
        spot: Decimal,
        lot_size: int,
        *,
        as_of: date | datetime | None = None,
        t_years: float | None = None,
        rate: float = DEFAULT_RATE,
        grid_points: int = 201,
        margin: MarginParams | None = None,
    ) -> StrategyAnalysis:
        """Build legs from the chain and analyse them.

        Time to expiry is ``t_years`` if given, else measured from ``as_of`` (default: now)
        to the ``expiry`` param (see :func:`_year_fraction`).
        """
        expiry: date = self.params["expiry"]
        if t_years is None:
            t_years = _year_fraction(expiry, as_of or datetime.now(UTC))
        legs = self.build_legs(rows, spot, lot_size, t_years=t_years, rate=rate)
        result = analyse_legs(
            legs,
            Decimal(spot),
            t_years,
            rate,
            margin,
            grid_points=grid_points,
        )
        return replace(
            result, strategy=self.name, underlying=self.params.get("underlying", ""), expiry=expiry
        )


def _leg_iv(
    quote: OptionLeg,
    spot: Decimal,
    strike: Decimal,
    t_years: float,
    rate: float,
    option_type: str,
    fallback: float | None,
) -> float:
    """The chain's IV; else implied from LTP; else the chain's ATM IV."""
    if quote.iv and quote.iv > 0:
        return float(quote.iv)
    if t_years > 0 and quote.ltp > 0:
        try:
            return implied_vol(quote.ltp, spot, strike, t_years, rate, option_type)
        except ValidationFailed:
            pass
    if fallback is not None:
        return fallback
    if t_years <= 0:
        return 0.0  # expired: valuation is intrinsic, IV irrelevant
    raise ValidationFailed(
        f"no implied volatility available for {option_type} {strike}", {"strike": _plain(strike)}
    )


# Each strategy below is pure data: its Params schema and its legs.


@register("iron_condor")
class IronCondor(OptionsStrategy):
    description = (
        "Sell an OTM put and an OTM call, buy further-OTM wings: credit, defined risk, profits in a range."
    )
    legs = (
        LegSpec("PE", "BUY", 1, (("short_offset", -1), ("wing_width", -1)), "long_put_strike"),
        LegSpec("PE", "SELL", 1, (("short_offset", -1),), "short_put_strike"),
        LegSpec("CE", "SELL", 1, (("short_offset", 1),), "short_call_strike"),
        LegSpec("CE", "BUY", 1, (("short_offset", 1), ("wing_width", 1)), "long_call_strike"),
    )
    ascending = ((0, 1, 2, 3),)

    class Params(BaseOptionsParams):
        short_offset = _offset(2, 1)
        wing_width = _offset(2, 1)
        long_put_strike = _explicit_strike()
        short_put_strike = _explicit_strike()
        short_call_strike = _explicit_strike()
        long_call_strike = _explicit_strike()


@register("bull_call_spread")
class BullCallSpread(OptionsStrategy):
    description = "Buy a call, sell a higher-strike call: debit, defined risk, profits on a rise."
    legs = (
        LegSpec("CE", "BUY", 1, (("long_offset", 1),), "long_strike"),
        LegSpec("CE", "SELL", 1, (("long_offset", 1), ("width", 1)), "short_strike"),
    )
    ascending = ((0, 1),)

    class Params(BaseOptionsParams):
        long_offset = fields.Integer(load_default=0, validate=validate.Range(min=-50, max=50))
        width = _offset(2, 1)
        long_strike = _explicit_strike()
        short_strike = _explicit_strike()


@register("bear_put_spread")
class BearPutSpread(OptionsStrategy):
    description = "Buy a put, sell a lower-strike put: debit, defined risk, profits on a fall."
    legs = (
        LegSpec("PE", "BUY", 1, (("long_offset", 1),), "long_strike"),
        LegSpec("PE", "SELL", 1, (("long_offset", 1), ("width", -1)), "short_strike"),
    )
    ascending = ((1, 0),)

    class Params(BaseOptionsParams):
        long_offset = fields.Integer(load_default=0, validate=validate.Range(min=-50, max=50))
        width = _offset(2, 1)
        long_strike = _explicit_strike()
        short_strike = _explicit_strike()


@register("long_straddle")
class LongStraddle(OptionsStrategy):
    description = "Buy a call and a put at the same (ATM) strike: debit, profits on a large move either way."
    legs = (
        LegSpec("CE", "BUY", 1, (("offset", 1),), "strike"),
        LegSpec("PE", "BUY", 1, (("offset", 1),), "strike"),
    )

    class Params(BaseOptionsParams):
        offset = fields.Integer(load_default=0, validate=validate.Range(min=-50, max=50))
        strike = _explicit_strike()


@register("short_strangle")
class ShortStrangle(OptionsStrategy):
    description = (
        "Sell an OTM put and an OTM call: credit, unlimited risk, profits if the price stays in range."
    )
    legs = (
        LegSpec("PE", "SELL", 1, (("offset", -1),), "put_strike"),
        LegSpec("CE", "SELL", 1, (("offset", 1),), "call_strike"),
    )
    ascending = ((0, 1),)

    class Params(BaseOptionsParams):
        offset = _offset(2, 1)
        put_strike = _explicit_strike()
        call_strike = _explicit_strike()


@register("butterfly")
class Butterfly(OptionsStrategy):
    description = (
        "Long call butterfly: buy 1 lower, sell 2 middle, buy 1 upper call: cheap debit, peak at middle."
    )
    legs = (
        LegSpec("CE", "BUY", 1, (("center_offset", 1), ("width", -1)), "lower_strike"),
        LegSpec("CE", "SELL", 2, (("center_offset", 1),), "center_strike"),
        LegSpec("CE", "BUY", 1, (("center_offset", 1), ("width", 1)), "upper_strike"),
    )
    ascending = ((0, 1, 2),)

    class Params(BaseOptionsParams):
        center_offset = fields.Integer(load_default=0, validate=validate.Range(min=-50, max=50))
        width = _offset(2, 1)
        lower_strike = _explicit_strike()
        center_strike = _explicit_strike()
        upper_strike = _explicit_strike()


@register("covered_call")
class CoveredCall(OptionsStrategy):
    description = "Hold the stock (one lot) and sell an OTM call against it: income, capped upside."
    legs = (
        LegSpec("EQ", "BUY"),
        LegSpec("CE", "SELL", 1, (("offset", 1),), "call_strike"),
    )

    class Params(BaseOptionsParams):
        offset = fields.Integer(load_default=2, validate=validate.Range(min=-50, max=50))
        call_strike = _explicit_strike()


@register("protective_put")
class ProtectivePut(OptionsStrategy):
    description = "Hold the stock (one lot) and buy an OTM put: insured downside, unlimited upside."
    legs = (
        LegSpec("EQ", "BUY"),
        LegSpec("PE", "BUY", 1, (("offset", -1),), "put_strike"),
    )

    class Params(BaseOptionsParams):
        offset = fields.Integer(load_default=2, validate=validate.Range(min=-50, max=50))
        put_strike = _explicit_strike()
