"""Reducing orders always pass; working orders count in every exposure check (no app)."""

from dataclasses import replace
from decimal import Decimal as D

from backend.domain.charges import ChargeSchedule
from backend.domain.orders.types import Instrument, OrderRequest, OrderType, Product, Side
from backend.domain.risk import (
    AccountSnapshot,
    BreakerState,
    RiskCoordinator,
    RiskLimits,
    TradingCircuitBreaker,
    TradingState,
    WorkingOrder,
)

COORD = RiskCoordinator(ChargeSchedule.default(), market_collar_pct=D("2"))
LIM = RiskLimits()
INST = {"SBIN": Instrument("SBIN"), "OPT": Instrument("OPT", segment="FO")}
LTP = {"SBIN": D("800"), "OPT": D("100")}
HALTED = BreakerState(tripped=TradingState.HALTED, trip_reason="daily loss 10005 reached limit 10000")


def limit(side, qty, price="800", product=Product.D, symbol="SBIN"):
    return OrderRequest(symbol, side, OrderType.LIMIT, product, qty, price=D(price))


def snap(held=None, working=(), cash="1000000", **kw):
    held = held or {}
    net: dict[str, int] = {}
    for (sym, _), q in held.items():
        net[sym] = net.get(sym, 0) + q
    return AccountSnapshot(D(cash), net, product_positions=held, working=list(working), **kw)


def decide(orders, account, limits=LIM):
    return COORD.evaluate_basket(orders, INST, LTP, account, limits)


def names(d):
    return [f.name for f in d.failed]


def test_every_risk_state_lets_a_pure_reduction_through():
    long100 = {("SBIN", "D"): 100}
    states = [
        snap(long100, breaker=HALTED),
        snap(long100, breaker=TradingCircuitBreaker.kill(BreakerState(), "tilt")),
        snap(long100, global_kill=True),
        snap(long100, breaker=BreakerState(tripped=TradingState.REDUCING)),
        snap(long100, breaker=BreakerState(day_realised_pnl=D("-60000"), orders_today=200)),
        snap(long100, cash="-500"),  # even an account in deficit can sell what it holds
    ]
    for account in states:
        d = decide([limit(Side.SELL, 100)], account)
        assert d.allowed, (account, d.failed)
        assert d.cash_required == 0
    # one more share than held opens a short: no longer a reduction, so HALTED refuses it
    d = decide([limit(Side.SELL, 101)], states[0])
    assert names(d) == ["trading_state", "short_selling"]
    assert "not reducing: SBIN" in d.failed[0].reason


def test_exit_above_max_order_value_is_allowed_whole():
    # 240 x 800 = 1,92,000 against a 1,00,000 limit: the exit passes, an entry of the same size does not
    lim = replace(LIM, max_order_value=D("100000"), max_orders_per_day=3)
    account = snap({("SBIN", "D"): 240}, breaker=BreakerState(orders_today=3))
    assert decide([limit(Side.SELL, 240)], account, lim).allowed
    d = decide([limit(Side.BUY, 240)], account, lim)
    assert set(names(d)) == {"max_order_value", "max_orders_per_day"}
    assert next(f for f in d.failed if f.name == "max_order_value").actual == "192000"


def test_restricted_symbol_or_segment_never_traps_a_position():
    lim = replace(LIM, allowed_segments=frozenset({"EQ"}), allowed_symbols=frozenset({"INFY"}))
    d = decide([limit(Side.SELL, 50, "100", symbol="OPT")], snap({("OPT", "D"): 50}), lim)
    assert d.allowed
    d = decide([limit(Side.BUY, 50, "100", symbol="OPT")], snap({("OPT", "D"): 50}), lim)
    assert names(d) == ["instrument", "instrument"]


def test_a_sell_of_reserved_quantity_is_a_short():
    held = {("SBIN", "D"): 10}
    resting = [WorkingOrder("SBIN", Product.D, Side.SELL, 10)]
    d = decide([limit(Side.SELL, 10)], snap(held, resting))
    assert names(d) == ["short_selling"]
    assert "reserved" in d.failed[0].reason and d.failed[0].actual == "-10"
    # 6 of the 10 reserved: a SELL of 4 reduces, a SELL of 5 shorts 1
    partly = [WorkingOrder("SBIN", Product.D, Side.SELL, 6)]
    assert decide([limit(Side.SELL, 4)], snap(held, partly)).allowed
    d = decide([limit(Side.SELL, 5)], snap(held, partly))
    assert names(d) == ["short_selling"] and d.failed[0].actual == "-1"
    # while HALTED, the reserved quantity is not reducing either
    d = decide([limit(Side.SELL, 10)], snap(held, resting, breaker=HALTED))
    assert names(d) == ["trading_state", "short_selling"]


def test_intraday_short_of_reserved_quantity_blocks_short_margin():
    held = {("SBIN", "I"): 10}
    resting = [WorkingOrder("SBIN", Product.I, Side.SELL, 10)]
    d = decide([limit(Side.SELL, 10, product=Product.I)], snap(held, resting))
    # intraday SELL 10 @ 800 = 8000: brokerage 8.00, STT 0.025% 2.00, txn 0.24, SEBI 0.01,
    # IPFT 0.01, GST 18% x 8.26 = 1.49 -> charges 11.75; margin 100% x 8000 -> cash 8011.75
    assert d.allowed and d.estimated_charges == D("11.75") and d.cash_required == D("8011.75")
    d = decide(
        [limit(Side.SELL, 10, product=Product.I)],
        snap(held, resting),
        replace(LIM, allow_short_selling=False),
    )
    assert names(d) == ["short_selling"]


def test_resting_buys_count_toward_max_position_quantity_and_value():
    lim = replace(LIM, max_position_qty=100, max_position_value=D("100000"))
    one_resting = [WorkingOrder("SBIN", Product.D, Side.BUY, 100)]
    assert decide([limit(Side.BUY, 100, "790")], snap()).allowed
    d = decide([limit(Side.BUY, 100, "790")], snap({}, one_resting), lim)
    # 0 held + 100 resting + 100 = 200 > 100; value 200 x 790 = 158000 > 100000
    assert names(d) == ["max_position", "max_position"]
    assert {f.actual for f in d.failed} == {"200", "158000"}
    # products add up per symbol: 60 held in D + 40 resting in I + BUY 10 in I = 110
    d = decide(
        [limit(Side.BUY, 10, product=Product.I)],
        snap({("SBIN", "D"): 60}, [WorkingOrder("SBIN", Product.I, Side.BUY, 40)]),
        replace(LIM, max_position_qty=100),
    )
    assert names(d) == ["max_position"] and d.failed[0].actual == "110"


def test_resting_sells_count_toward_max_short_position():
    lim = replace(LIM, max_position_qty=100)
    resting = [WorkingOrder("SBIN", Product.I, Side.SELL, 80)]
    d = decide([limit(Side.SELL, 30, product=Product.I)], snap({}, resting), lim)
    assert names(d) == ["max_position"] and d.failed[0].actual == "110"


def test_covering_a_short_already_covered_by_a_resting_buy_needs_cash():
    held = {("SBIN", "I"): -10}
    resting = [WorkingOrder("SBIN", Product.I, Side.BUY, 10)]
    free = decide([limit(Side.BUY, 10, product=Product.I)], snap(held))
    assert free.allowed and free.cash_required == 0
    # the resting BUY already covers the short: a second BUY 10 opens a long, 8000 + charges
    d = decide([limit(Side.BUY, 10, product=Product.I)], snap(held, resting))
    # intraday BUY 10 @ 800: brokerage 8.00, txn 0.24, SEBI 0.01, IPFT 0.01, GST 1.49, stamp 0.003% 0.24
    # -> 9.99
    assert d.allowed and d.cash_required == D("8009.99")


def test_products_are_separate_positions():
    # 100 held in D; a SELL in product I closes nothing intraday: it is an intraday short
    held = {("SBIN", "D"): 100}
    d = decide([limit(Side.SELL, 100, product=Product.I)], snap(held, breaker=HALTED))
    assert names(d) == ["trading_state"]
    assert decide([limit(Side.SELL, 100, product=Product.D)], snap(held, breaker=HALTED)).allowed


def test_basket_legs_reserve_for_each_other():
    held = {("SBIN", "D"): 10}
    d = decide([limit(Side.SELL, 10), limit(Side.SELL, 10, "810")], snap(held))
    assert names(d) == ["short_selling"]
    assert decide([limit(Side.SELL, 6), limit(Side.SELL, 4, "810")], snap(held, breaker=HALTED)).allowed
