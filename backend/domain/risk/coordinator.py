"""Pre-trade risk: independent checks composed into one decision, no side effects.

Every order goes through ``RiskCoordinator.evaluate`` (or ``evaluate_basket`` for several orders that
must be accepted together). Each check is a small class; the coordinator runs *all* of them and lists
every failure, so the caller can show the user everything that is wrong at once.

A basket is checked for its combined effect: positions are projected order by order, cash needed and
order counts are summed, and the basket is allowed only if every check passes for the whole basket.

Reducing or increasing: each order is classified against its position (per symbol AND product: I and
D are separate positions) *net of working orders* (``classify``). A SELL reduces only the long quantity
that no resting SELL already reserves; a BUY covers only the short quantity no resting BUY already covers.
The rest of the order opens (or adds to) exposure. A pure reduction (nothing opens) passes every risk
state and limit: HALTED, REDUCING, the kill switches, the daily loss limit, ``max_order_value``,
``max_orders_per_day``, ``max_position``, buying power and the allowed segments/symbols. An exit is
always possible; it is never sliced by ``max_order_value`` (it is a limit on new risk).

Working orders count in every exposure check: resting BUYs add to the position they would build
(max position, quantity and value), resting SELLs reserve the quantity they would sell, so a SELL of
reserved quantity is a short and follows the short rules (only product I, only with
``allow_short_selling``; opening a short blocks ``short_margin_pct`` of its notional plus charges).

F&O is different: writing options and trading futures on either product needs the F&O margin of
backend/domain/risk/margin.py instead of the notional, computed for each basket as one portfolio;
the short rule above is for cash equity only.
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
class WorkingOrder:
    """The unfilled rest of a resting order, as the exposure checks count it."""

    symbol: str
    product: Product
    side: Side
    quantity: int  # unfilled quantity


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """What the service knows about the account at decision time."""

    available_cash: Decimal  # free cash after blocked margin of open orders/shorts
    positions: Mapping[str, int] = field(default_factory=dict)  # signed net qty per symbol (all products)
    breaker: BreakerState = field(default_factory=BreakerState)
    day_unrealised_pnl: Decimal = Decimal(0)  # counted against the daily loss limit with realised P&L
    global_kill: bool = False
    # signed qty per (symbol, product). None: ``positions`` is taken as held in each order's own product
    # (a caller that knows only one product per symbol, e.g. a strategy's simulation).
    product_positions: Mapping[tuple[str, str], int] | None = None
    working: Sequence[WorkingOrder] = ()  # the account's resting orders

    def held(self, symbol: str, product: Product) -> int:
        if self.product_positions is None:
            return self.positions.get(symbol, 0)
        return self.product_positions.get((symbol, str(product)), 0)

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
    position_before: int  # held in the order's product (fills only, working orders not counted)
    position_after: int  # held after the order fills, in its product
    cash_needed: Decimal
    reduce_qty: int = 0  # part of the order that closes free (unreserved) held quantity
    open_qty: int = 0  # part that opens or adds to exposure (a SELL's is a short)
    exposure_after: int = 0  # symbol's worst-case signed position if every working order and this fill
    margin: Decimal = Decimal(0)  # F&O margin this order blocks once filled (part of cash_needed)

    @property
    def reduces_risk(self) -> bool:
        """A pure reduction: the whole order closes quantity held and not already reserved."""
        return self.reduce_qty > 0 and self.open_qty == 0


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


def all_reducing(ctx: CheckContext) -> bool:
    """Every order of the decision is a pure reduction: no limit or risk state may block it."""
    return all(i.reduces_risk for i in ctx.impacts)


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
        # HALTED and REDUCING both let pure reductions through: an exit is always possible
        bad = [i.request.symbol for i in ctx.impacts if not i.reduces_risk]
        if not bad:
            return []
        if st is TradingState.HALTED:
            reason = f"trading halted ({why}); only orders that reduce a position are accepted"
        else:
            reason = f"only risk-reducing orders allowed ({why})"
        return [CheckResult(self.name, f"{reason}; not reducing: {', '.join(bad)}", "ACTIVE", str(st))]


class DailyLossCheck:
    name = "daily_loss_limit"

    def run(self, ctx: CheckContext) -> list[CheckResult]:
        loss = -(ctx.account.breaker.day_realised_pnl + ctx.account.day_unrealised_pnl)
        if loss >= ctx.limits.daily_loss_limit and not all_reducing(ctx):
            return [
                CheckResult(
                    self.name, "daily loss limit reached", str(ctx.limits.daily_loss_limit), str(loss)
                )
            ]
        return []


class MaxOrdersPerDayCheck:
    name = "max_orders_per_day"

    def run(self, ctx: CheckContext) -> list[CheckResult]:
        if all_reducing(ctx):
            return []
        after = ctx.account.breaker.orders_today + len(ctx.impacts)
        if after > ctx.limits.max_orders_per_day:
            return [
                CheckResult(
                    self.name, "too many orders today", str(ctx.limits.max_orders_per_day), str(after)
                )
            ]
        return []


def _segment(i: OrderImpact) -> str:
    """The risk limits' segment of an impact (EQ when the instrument is unknown: the instrument check
    refuses that order anyway)."""
    return i.instrument.segment if i.instrument is not None else "EQ"


class MaxOrderValueCheck:
    """A limit on new risk: an exit larger than ``max_order_value`` is allowed whole (not sliced)."""

    name = "max_order_value"

    def run(self, ctx: CheckContext) -> list[CheckResult]:
        out = []
        for i in ctx.impacts:
            name, lim = ctx.limits.order_value_limit(_segment(i))
            if i.notional > lim and not i.reduces_risk:
                out.append(
                    CheckResult(
                        self.name, f"{i.request.symbol}: order value above {name}", str(lim), str(i.notional)
                    )
                )
        return out


class MaxPositionCheck:
    """Worst-case position per symbol (every product), counting working orders: resting BUYs as if
    filled for the long side, resting SELLs for the short side. Only orders that open exposure are
    judged; one that leaves the position smaller never is."""

    name = "max_position"

    def run(self, ctx: CheckContext) -> list[CheckResult]:
        out: list[CheckResult] = []
        final: dict[tuple[str, Side], OrderImpact] = {}
        for i in ctx.impacts:  # the last opening leg per symbol and side sees the whole basket
            if i.open_qty > 0:
                final[(i.request.symbol, i.request.side)] = i
        for (sym, _side), i in final.items():
            after = abs(i.exposure_after)
            if after > ctx.limits.max_position_qty:
                out.append(
                    CheckResult(
                        self.name,
                        f"{sym}: position quantity above limit (working orders included)",
                        str(ctx.limits.max_position_qty),
                        str(after),
                    )
                )
            if i.ref_price is not None:
                value = after * i.ref_price
                name, lim = ctx.limits.position_value_limit(_segment(i))
                if value > lim:
                    out.append(
                        CheckResult(
                            self.name,
                            f"{sym}: position value above {name} (working orders included)",
                            str(lim),
                            str(value),
                        )
                    )
        return out


class ShortSellingCheck:
    """A SELL beyond the free long of its product (held minus what resting SELLs reserve) is a short."""

    name = "short_selling"

    def run(self, ctx: CheckContext) -> list[CheckResult]:
        out = []
        for i in ctx.impacts:
            if i.request.side is not Side.SELL or i.open_qty == 0:
                continue
            if i.instrument is not None and i.instrument.is_derivative:
                continue  # writing options and selling futures is ordinary F&O, margined instead
            sym = i.request.symbol
            reserved = i.position_before > 0 and i.reduce_qty < min(i.request.quantity, i.position_before)
            why = " (the held quantity is already reserved by working sell orders)" if reserved else ""
            if i.request.product is not Product.I:
                out.append(
                    CheckResult(
                        self.name, f"{sym}: delivery short selling is not allowed{why}", "0", str(-i.open_qty)
                    )
                )
            elif not ctx.limits.allow_short_selling:
                out.append(
                    CheckResult(
                        self.name,
                        f"{sym}: short selling disabled for this account{why}",
                        "0",
                        str(-i.open_qty),
                    )
                )
        return out


class BuyingPowerCheck:
    name = "buying_power"

    def run(self, ctx: CheckContext) -> list[CheckResult]:
        need = sum((i.cash_needed for i in ctx.impacts), Decimal(0))
        if need > ctx.account.available_cash and not all_reducing(ctx):
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
            if i.instrument.segment not in lim.allowed_segments and not i.reduces_risk:
                out.append(
                    CheckResult(
                        self.name,
                        f"{sym}: segment not allowed",
                        ",".join(sorted(lim.allowed_segments)),
                        i.instrument.segment,
                    )
                )
            if (
                lim.allowed_symbols is not None
                and sym.upper() not in lim.allowed_symbols
                and not i.reduces_risk
            ):
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


# ----------------------------------------------------------------------------- working orders


class WorkingBook:
    """Held positions and resting orders of one account, to classify orders net of working orders.

    Per (symbol, product): ``held`` (filled), ``buys`` and ``sells`` (unfilled quantity of resting
    orders). The free long a SELL may close is ``held - sells``; the free short a BUY may cover is
    ``-held - buys``. Per symbol, the worst-case position counts every product's held quantity plus
    all resting BUYs (long side) or minus all resting SELLs (short side).
    """

    def __init__(self, account: AccountSnapshot) -> None:
        self.account = account
        self.buys: dict[tuple[str, str], int] = {}
        self.sells: dict[tuple[str, str], int] = {}
        self.symbol_buys: dict[str, int] = {}
        self.symbol_sells: dict[str, int] = {}

    @classmethod
    def of(cls, account: AccountSnapshot) -> WorkingBook:
        book = cls(account)
        for w in account.working:
            book._rest(w.symbol, w.product, w.side, w.quantity)
        return book

    def held(self, symbol: str, product: Product) -> int:
        return self.account.held(symbol, product)

    def _rest(self, symbol: str, product: Product | str, side: Side, qty: int) -> None:
        key = (symbol, str(product))
        if side is Side.BUY:
            self.buys[key] = self.buys.get(key, 0) + qty
            self.symbol_buys[symbol] = self.symbol_buys.get(symbol, 0) + qty
        else:
            self.sells[key] = self.sells.get(key, 0) + qty
            self.symbol_sells[symbol] = self.symbol_sells.get(symbol, 0) + qty

    def classify(self, req: OrderRequest) -> tuple[int, int]:
        """(reducing quantity, opening quantity) of ``req`` against what is held and not reserved."""
        key = (req.symbol, str(req.product))
        held = self.held(req.symbol, req.product)
        if req.side is Side.SELL:
            free = max(held - self.sells.get(key, 0), 0)
        else:
            free = max(-held - self.buys.get(key, 0), 0)
        reduce_qty = min(req.quantity, free)
        return reduce_qty, req.quantity - reduce_qty

    def add(self, req: OrderRequest) -> int:
        """Count ``req`` as working; returns the symbol's worst-case signed position on its side."""
        self._rest(req.symbol, req.product, req.side, req.quantity)
        net = self.account.positions.get(req.symbol, 0)
        if req.side is Side.BUY:
            return net + self.symbol_buys.get(req.symbol, 0)
        return net - self.symbol_sells.get(req.symbol, 0)


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
        book = WorkingBook.of(account)
        impacts = []
        for req in orders:
            inst = instruments.get(req.symbol)
            px = ltp.get(req.symbol)
            ref = self._ref_price(req, px)
            notional = Decimal(req.quantity) * ref if ref is not None else Decimal(0)
            charges = None
            if ref is not None and inst is not None and inst.charge_segment in self.charges.segments:
                charges = self.charges.estimate(req.side, req.product, req.quantity, ref, inst.charge_segment)
            reduce_qty, open_qty = book.classify(req)
            before = book.held(req.symbol, req.product)
            exposure = book.add(req)  # later legs of a basket see this one as working
            after = before + req.side.sign * req.quantity
            fee = charges.total if charges else Decimal(0)
            margined = inst is not None and (
                inst.instrument_type == "FUT" or (inst.is_option and req.side is Side.SELL)
            )
            if margined:
                # futures and written options need margin, not the notional (added by _with_margin)
                cash = fee if ref is not None and open_qty else Decimal(0)
            else:
                cash = self.cash_needed(req, ref, fee, open_qty, limits)
            impacts.append(
                OrderImpact(
                    req, inst, px, ref, notional, charges, before, after, cash, reduce_qty, open_qty, exposure
                )
            )
        return self._with_margin(impacts, account)

    def _with_margin(self, impacts: list[OrderImpact], account: AccountSnapshot) -> list[OrderImpact]:
        """Add F&O margin: the opening part of the derivative orders of each underlying is margined
        as one portfolio (so a hedged basket gets its defined-risk margin), then split over the
        orders (backend/domain/risk/margin.py)."""
        groups: dict[str, list[tuple[int, MarginLeg]]] = {}
        as_of = account.as_of or datetime.now(UTC)
        for n, i in enumerate(impacts):
            inst = i.instrument
            opened = i.open_qty  # net of working orders, as every exposure check
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

    @staticmethod
    def cash_needed(
        req: OrderRequest, ref: Decimal | None, fee: Decimal, open_qty: int, limits: RiskLimits
    ) -> Decimal:
        """Cash to block for the part of an order that opens exposure: a BUY's notional plus charges,
        a short's ``short_margin_pct`` of notional plus charges. The reducing part needs none."""
        if ref is None or open_qty == 0:
            return Decimal(0)
        if req.side is Side.BUY:
            return open_qty * ref + fee
        return open_qty * ref * limits.short_margin_pct / _HUNDRED + fee

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
