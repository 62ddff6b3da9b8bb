"""Pre-trade risk: independent checks composed into one decision, no side effects.

Every order goes through ``RiskCoordinator.evaluate`` (or ``evaluate_basket`` for several orders that
must be accepted together). Each check is a small class; the coordinator runs *all* of them and lists
every failure, so the caller can show the user everything that is wrong at once.

A basket is checked for its combined effect: positions are projected order by order, cash needed and
order counts are summed, and the basket is allowed only if every check passes for the whole basket.

Short selling (cash equity): only intraday (product I) shorts are allowed, and only when
``allow_short_selling``; opening or increasing a short blocks ``short_margin_pct`` of its notional (plus
charges) from available cash. Delivery (product D) sells beyond the long quantity held are refused.
F&O is different: writing options and trading futures on either product needs the F&O margin of
backend/domain/risk/margin.py instead of the notional, computed for each basket as one portfolio.
Orders that only reduce an existing position (sell <= long, buy <= short) need no buying power, so
an account can always exit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Protocol

from backend.domain.charges import ChargeBreakdown, ChargeSchedule
from backend.domain.errors import RiskRejected
from backend.domain.orders.types import Instrument, OrderRequest, OrderType, Product, Side
from backend.domain.risk.circuit_breaker import BreakerState, TradingCircuitBreaker, TradingState
from backend.domain.risk.limits import RiskLimits
from backend.domain.risk.margin import MarginLeg, MarginParams, allocate, portfolio_margin

_HUNDRED = Decimal(100)
_EXPIRY_CLOSE = time(15, 30)  # NSE derivatives expire at the equity close (IST)


def _opened(before: int, after: int) -> int:
    """Quantity by which an order grows the exposure (0 for a pure reduction; a flip opens |after|)."""
    if before == 0 or (before > 0) == (after > 0):
        return max(abs(after) - abs(before), 0)
    return abs(after)


def _years_to_expiry(expiry: date | None, as_of: datetime) -> float:
    if expiry is None:
        return 0.0
    from backend.domain.market.calendar import IST

    close = datetime.combine(expiry, _EXPIRY_CLOSE, tzinfo=IST)
    return max((close - as_of).total_seconds(), 0.0) / (365.0 * 86400.0)


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    reason: str
    limit: str | None = None
    actual: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"name": self.name, "reason": self.reason, "limit": self.limit, "actual": self.actual}


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """What the service knows about the account at decision time."""

    available_cash: Decimal  # free cash after blocked margin of open orders/shorts
    positions: Mapping[str, int] = field(default_factory=dict)  # signed net qty per symbol
    breaker: BreakerState = field(default_factory=BreakerState)
    day_unrealised_pnl: Decimal = Decimal(0)  # counted against the daily loss limit with realised P&L
    global_kill: bool = False
    # F&O margin: prices of the derivatives' underlyings and the time they are judged at
    underlying_prices: Mapping[str, Decimal] = field(default_factory=dict)
    as_of: datetime | None = None


@dataclass(frozen=True, slots=True)
class OrderImpact:
    """One order of the basket, priced and projected (computed once, shared by all checks)."""

    request: OrderRequest
    instrument: Instrument | None
    ltp: Decimal | None
    ref_price: Decimal | None  # price used for notional: limit price, or ltp + market collar
    notional: Decimal
    charges: ChargeBreakdown | None
    position_before: int
    position_after: int
    cash_needed: Decimal
    margin: Decimal = Decimal(0)  # F&O margin this order blocks once filled (part of cash_needed)

    @property
    def reduces_risk(self) -> bool:
        b, a = self.position_before, self.position_after
        return b != 0 and abs(a) < abs(b) and (a == 0 or (a > 0) == (b > 0))


@dataclass(frozen=True, slots=True)
class CheckContext:
    impacts: Sequence[OrderImpact]
    account: AccountSnapshot
    limits: RiskLimits


class RiskCheck(Protocol):
    name: str

    def run(self, ctx: CheckContext) -> list[CheckResult]: ...


@dataclass(frozen=True, slots=True)
class RiskDecision:
    allowed: bool
    failed: list[CheckResult]
    estimated_charges: Decimal
    charges: list[ChargeBreakdown | None]
    cash_required: Decimal
    checks_run: list[str]
    trading_state: TradingState
    margins: list[Decimal] = field(default_factory=list)  # F&O margin per order

    def raise_if_rejected(self) -> None:
        if not self.allowed:
            raise RiskRejected(
                "; ".join(f"{f.name}: {f.reason}" for f in self.failed),
                details={"checks": [f.to_dict() for f in self.failed]},
            )


# ----------------------------------------------------------------------------- checks


class TradingStateCheck:
    name = "trading_state"

    def run(self, ctx: CheckContext) -> list[CheckResult]:
        st = TradingCircuitBreaker.effective_state(ctx.account.breaker, ctx.account.global_kill)
        if st is TradingState.ACTIVE:
            return []
        if ctx.account.global_kill:
            why = "global kill switch engaged"
        elif ctx.account.breaker.kill_switch:
            why = f"account kill switch engaged: {ctx.account.breaker.kill_reason or 'manual'}"
        else:
            why = ctx.account.breaker.trip_reason or str(st)
        if st is TradingState.HALTED:
            return [CheckResult(self.name, f"trading halted ({why})", "ACTIVE", str(st))]
        bad = [i.request.symbol for i in ctx.impacts if not i.reduces_risk]
        if bad:
            reason = f"only risk-reducing orders allowed ({why}); not reducing: {', '.join(bad)}"
            return [CheckResult(self.name, reason, "ACTIVE", str(st))]
        return []


class DailyLossCheck:
    name = "daily_loss_limit"

    def run(self, ctx: CheckContext) -> list[CheckResult]:
        loss = -(ctx.account.breaker.day_realised_pnl + ctx.account.day_unrealised_pnl)
        if loss >= ctx.limits.daily_loss_limit and not all(i.reduces_risk for i in ctx.impacts):
            return [
                CheckResult(
                    self.name, "daily loss limit reached", str(ctx.limits.daily_loss_limit), str(loss)
                )
            ]
        return []


class MaxOrdersPerDayCheck:
    name = "max_orders_per_day"

    def run(self, ctx: CheckContext) -> list[CheckResult]:
        after = ctx.account.breaker.orders_today + len(ctx.impacts)
        if after > ctx.limits.max_orders_per_day:
            return [
                CheckResult(
                    self.name, "too many orders today", str(ctx.limits.max_orders_per_day), str(after)
                )
            ]
        return []


class MaxOrderValueCheck:
    name = "max_order_value"

    def run(self, ctx: CheckContext) -> list[CheckResult]:
        lim = ctx.limits.max_order_value
        return [
            CheckResult(self.name, f"{i.request.symbol}: order value above limit", str(lim), str(i.notional))
            for i in ctx.impacts
            if i.notional > lim
        ]


class MaxPositionCheck:
    name = "max_position"

    def run(self, ctx: CheckContext) -> list[CheckResult]:
        out: list[CheckResult] = []
        final: dict[str, OrderImpact] = {}
        for i in ctx.impacts:  # last projection per symbol = combined basket effect
            final[i.request.symbol] = i
        for sym, i in final.items():
            start = ctx.account.positions.get(sym, 0)
            after = i.position_after
            if abs(after) <= abs(start):
                continue  # never block an order that leaves the position smaller
            if abs(after) > ctx.limits.max_position_qty:
                out.append(
                    CheckResult(
                        self.name,
                        f"{sym}: position quantity above limit",
                        str(ctx.limits.max_position_qty),
                        str(abs(after)),
                    )
                )
            if i.ref_price is not None:
                value = abs(after) * i.ref_price
                if value > ctx.limits.max_position_value:
                    out.append(
                        CheckResult(
                            self.name,
                            f"{sym}: position value above limit",
                            str(ctx.limits.max_position_value),
                            str(value),
                        )
                    )
        return out


class ShortSellingCheck:
    name = "short_selling"

    def run(self, ctx: CheckContext) -> list[CheckResult]:
        out = []
        for i in ctx.impacts:
            opens_short = i.position_after < 0 and i.position_after < min(i.position_before, 0)
            if not opens_short or (i.instrument is not None and i.instrument.is_derivative):
                continue  # writing options and selling futures is ordinary F&O, margined instead
            if i.request.product is not Product.I:
                out.append(
                    CheckResult(
                        self.name,
                        f"{i.request.symbol}: delivery short selling is not allowed",
                        "0",
                        str(i.position_after),
                    )
                )
            elif not ctx.limits.allow_short_selling:
                out.append(
                    CheckResult(
                        self.name,
                        f"{i.request.symbol}: short selling disabled for this account",
                        "0",
                        str(i.position_after),
                    )
                )
        return out


class BuyingPowerCheck:
    name = "buying_power"

    def run(self, ctx: CheckContext) -> list[CheckResult]:
        need = sum((i.cash_needed for i in ctx.impacts), Decimal(0))
        if need > ctx.account.available_cash:
            return [
                CheckResult(
                    self.name,
                    "insufficient funds (notional + charges)",
                    str(ctx.account.available_cash),
                    str(need),
                )
            ]
        return []


class InstrumentCheck:
    name = "instrument"

    def run(self, ctx: CheckContext) -> list[CheckResult]:
        out = []
        lim = ctx.limits
        for i in ctx.impacts:
            sym = i.request.symbol
            if i.instrument is None:
                out.append(CheckResult(self.name, f"{sym}: unknown instrument"))
                continue
            if i.instrument.segment not in lim.allowed_segments:
                out.append(
                    CheckResult(
                        self.name,
                        f"{sym}: segment not allowed",
                        ",".join(sorted(lim.allowed_segments)),
                        i.instrument.segment,
                    )
                )
            if lim.allowed_symbols is not None and sym.upper() not in lim.allowed_symbols:
                out.append(CheckResult(self.name, f"{sym}: symbol not allowed", None, sym))
            if i.ltp is None:
                out.append(CheckResult(self.name, f"{sym}: no market price available"))
        return out


class PriceCollarCheck:
    """Fat-finger guard: limit and trigger prices must lie within ``price_collar_pct`` of ltp."""

    name = "price_collar"

    def run(self, ctx: CheckContext) -> list[CheckResult]:
        out = []
        pct = ctx.limits.price_collar_pct
        for i in ctx.impacts:
            if i.ltp is None or i.ltp <= 0:
                continue
            for label, px in (("price", i.request.price), ("trigger_price", i.request.trigger_price)):
                if px is None:
                    continue
                dev = abs(px - i.ltp) * _HUNDRED / i.ltp
                if dev > pct:
                    out.append(
                        CheckResult(
                            self.name,
                            f"{i.request.symbol}: {label} {px} is {dev.quantize(Decimal('0.01'))}% "
                            f"from ltp {i.ltp}",
                            f"{pct}%",
                            f"{dev.quantize(Decimal('0.01'))}%",
                        )
                    )
        return out


DEFAULT_CHECKS: tuple[RiskCheck, ...] = (
    TradingStateCheck(),
    DailyLossCheck(),
    MaxOrdersPerDayCheck(),
    MaxOrderValueCheck(),
    MaxPositionCheck(),
    ShortSellingCheck(),
    BuyingPowerCheck(),
    InstrumentCheck(),
    PriceCollarCheck(),
)


# ----------------------------------------------------------------------------- coordinator


class RiskCoordinator:
    def __init__(
        self,
        charges: ChargeSchedule,
        market_collar_pct: Decimal = Decimal("2"),
        checks: Sequence[RiskCheck] = DEFAULT_CHECKS,
        margin: MarginParams | None = None,
    ):
        self.charges = charges
        self.margin = margin or MarginParams()
        # a MARKET BUY can fill up to ltp * (1 + collar) under the fill model, so price it there
        self.market_collar_pct = market_collar_pct
        self.checks = list(checks)

    def _ref_price(self, req: OrderRequest, ltp: Decimal | None) -> Decimal | None:
        if req.type in (OrderType.LIMIT, OrderType.SL):
            return req.price
        if ltp is None:
            return None
        base = req.trigger_price if req.type is OrderType.SL_M and req.trigger_price else ltp
        f = self.market_collar_pct / _HUNDRED
        return base * (1 + f) if req.side is Side.BUY else base * (1 - f)

    def project(
        self,
        orders: Sequence[OrderRequest],
        instruments: Mapping[str, Instrument],
        ltp: Mapping[str, Decimal],
        account: AccountSnapshot,
        limits: RiskLimits,
    ) -> list[OrderImpact]:
        positions = dict(account.positions)
        impacts = []
        for req in orders:
            inst = instruments.get(req.symbol)
            px = ltp.get(req.symbol)
            ref = self._ref_price(req, px)
            notional = Decimal(req.quantity) * ref if ref is not None else Decimal(0)
            charges = None
            if ref is not None and inst is not None and inst.charge_segment in self.charges.segments:
                charges = self.charges.estimate(req.side, req.product, req.quantity, ref, inst.charge_segment)
            before = positions.get(req.symbol, 0)
            after = before + (req.quantity if req.side is Side.BUY else -req.quantity)
            positions[req.symbol] = after
            fee = charges.total if charges else Decimal(0)
            if ref is None:
                cash = Decimal(0)
            elif (
                inst is not None
                and inst.instrument_type == "FUT"
                or (inst is not None and inst.is_option and req.side is Side.SELL)
            ):
                # futures and written options need margin, not the notional (added below)
                cash = fee if _opened(before, after) else Decimal(0)
            elif req.side is Side.BUY:
                # covering a short needs no buying power; any excess that opens a long does
                covered = min(req.quantity, max(-before, 0))
                cash = (req.quantity - covered) * ref + (fee if covered < req.quantity else Decimal(0))
            else:
                new_short = max(-after, 0) - max(-before, 0)
                cash = (
                    new_short * ref * limits.short_margin_pct / _HUNDRED + fee
                    if new_short > 0
                    else Decimal(0)
                )
            impacts.append(OrderImpact(req, inst, px, ref, notional, charges, before, after, cash))
        return self._with_margin(impacts, account)

    def _with_margin(self, impacts: list[OrderImpact], account: AccountSnapshot) -> list[OrderImpact]:
        """Add F&O margin: the opening part of the derivative orders of each underlying is margined
        as one portfolio (so a hedged basket gets its defined-risk margin), then split over the
        orders (backend/domain/risk/margin.py)."""
        groups: dict[str, list[tuple[int, MarginLeg]]] = {}
        as_of = account.as_of or datetime.now(UTC)
        for n, i in enumerate(impacts):
            inst = i.instrument
            opened = _opened(i.position_before, i.position_after)
            if inst is None or not inst.is_derivative or not opened or i.ltp is None:
                continue
            t = _years_to_expiry(inst.expiry, as_of)
            leg = MarginLeg(
                kind=str(inst.instrument_type),
                side=1 if i.request.side is Side.BUY else -1,
                quantity=opened,
                price=i.ltp,
                strike=inst.strike,
                t_years=t,
            )
            groups.setdefault(inst.underlying or inst.symbol, []).append((n, leg))
        if not groups:
            return impacts
        out = list(impacts)
        for underlying, members in groups.items():
            legs = [leg for _, leg in members]
            spot = account.underlying_prices.get(underlying)
            if spot is None:
                # no price of the underlying: a future's own price, else the strike, stands in
                first = legs[0]
                spot = first.price if first.kind == "FUT" else (first.strike or first.price)
            t = max((leg.t_years or 0.0) for leg in legs)
            total = portfolio_margin(legs, Decimal(spot), t, self.margin).total
            for (n, _leg), part in zip(
                members, allocate(total, legs, Decimal(spot), t, self.margin), strict=True
            ):
                out[n] = replace(out[n], cash_needed=out[n].cash_needed + part, margin=part)
        return out

    def evaluate_basket(
        self,
        orders: Sequence[OrderRequest],
        instruments: Mapping[str, Instrument],
        ltp: Mapping[str, Decimal],
        account: AccountSnapshot,
        limits: RiskLimits,
    ) -> RiskDecision:
        """All-or-nothing decision for the combined effect of ``orders``."""
        impacts = self.project(orders, instruments, ltp, account, limits)
        ctx = CheckContext(impacts, account, limits)
        failed: list[CheckResult] = []
        for check in self.checks:
            failed.extend(check.run(ctx))
        charges = [i.charges for i in impacts]
        return RiskDecision(
            allowed=not failed,
            failed=failed,
            estimated_charges=sum((c.total for c in charges if c), Decimal(0)),
            charges=charges,
            cash_required=sum((i.cash_needed for i in impacts), Decimal(0)),
            checks_run=[c.name for c in self.checks],
            trading_state=TradingCircuitBreaker.effective_state(account.breaker, account.global_kill),
            margins=[i.margin for i in impacts],
        )

    def evaluate(
        self,
        order: OrderRequest,
        instrument: Instrument | None,
        ltp: Decimal | None,
        account: AccountSnapshot,
        limits: RiskLimits,
    ) -> RiskDecision:
        instruments = {order.symbol: instrument} if instrument else {}
        prices = {order.symbol: ltp} if ltp is not None else {}
        return self.evaluate_basket([order], instruments, prices, account, limits)
