import json
import math
import statistics
from dataclasses import replace
from datetime import date
from decimal import Decimal as D

import pytest

from backend.domain.charges import ChargeSchedule
from backend.domain.errors import PermissionDenied, RiskRejected, ValidationFailed
from backend.domain.orders.types import Instrument, OrderRequest, OrderType, Product, Side
from backend.domain.risk import (
    AccountSnapshot,
    BreakerState,
    PositionSizer,
    ProtectedPosition,
    RiskCoordinator,
    RiskLimits,
    RiskMetricsCalculator,
    StopLossManager,
    TradingCircuitBreaker,
    TradingState,
    merge_limits,
)

SCHED = ChargeSchedule.default()
COORD = RiskCoordinator(SCHED, market_collar_pct=D("2"))
LIM = RiskLimits()
INST = {
    "RELIANCE": Instrument("RELIANCE"),
    "TCS": Instrument("TCS"),
    "NIFTYFUT": Instrument("NIFTYFUT", segment="FO"),
}
LTP = {"RELIANCE": D("1000"), "TCS": D("4000"), "NIFTYFUT": D("22000")}
DAY = date(2025, 1, 2)


def limit(side, qty, price, symbol="RELIANCE", product=Product.I):
    return OrderRequest(symbol, side, OrderType.LIMIT, product, qty, price=D(price))


def acct(cash="1000000", positions=None, **kw):
    return AccountSnapshot(D(cash), positions or {}, **kw)


def decide(orders, account=None, limits=LIM):
    return COORD.evaluate_basket(orders, INST, LTP, account or acct(), limits)


def names(dec):
    return [f.name for f in dec.failed]


def test_happy_path_with_charges_and_cash_required():
    d = COORD.evaluate(limit(Side.BUY, 10, "1000"), INST["RELIANCE"], D("1000"), acct(), LIM)
    # intraday 10 x 1000: brokerage 10.00, txn 0.30, SEBI 0.01, IPFT 0.01,
    # GST 18% x 10.32 = 1.8576 -> 1.86, stamp 0.30: 12.48
    assert d.allowed and d.failed == []
    assert d.estimated_charges == D("12.48")
    assert d.cash_required == D("10012.48")
    assert d.trading_state is TradingState.ACTIVE
    assert len(d.checks_run) == 9


def test_market_buy_priced_at_collar():
    o = OrderRequest("RELIANCE", Side.BUY, OrderType.MARKET, Product.I, 10)
    d = decide([o])
    assert d.charges[0].turnover == D("10200.00")  # 10 x 1000 x 1.02


def test_halted_by_account_kill_switch_and_global_kill():
    killed = TradingCircuitBreaker.kill(BreakerState(), "user request")
    d = decide([limit(Side.BUY, 1, "1000")], acct(breaker=killed))
    assert names(d) == ["trading_state"] and "user request" in d.failed[0].reason
    d = decide([limit(Side.BUY, 1, "1000")], acct(global_kill=True))
    assert names(d) == ["trading_state"] and "global" in d.failed[0].reason
    # halted never blocks a pure reduction: an exit is always possible
    d = decide([limit(Side.SELL, 1, "1000")], acct(positions={"RELIANCE": 5}, global_kill=True))
    assert d.allowed
    d = decide([limit(Side.SELL, 6, "1000")], acct(positions={"RELIANCE": 5}, breaker=killed))
    assert names(d) == ["trading_state"] and "not reducing: RELIANCE" in d.failed[0].reason


def test_reducing_state_allows_only_risk_reducing():
    st = BreakerState(tripped=TradingState.REDUCING, trip_reason="5 consecutive losing trades")
    a = acct(positions={"RELIANCE": 10}, breaker=st)
    assert decide([limit(Side.SELL, 10, "1000")], a).allowed
    d = decide([limit(Side.BUY, 1, "1000")], a)
    assert names(d) == ["trading_state"]
    d = decide([limit(Side.SELL, 11, "1000")], a)  # flips to short: not reducing
    assert names(d) == ["trading_state"]


def test_daily_loss_limit():
    st = BreakerState(day_realised_pnl=D("-40000"))
    d = decide([limit(Side.BUY, 1, "1000")], acct(breaker=st, day_unrealised_pnl=D("-10000")))
    assert names(d) == ["daily_loss_limit"] and d.failed[0].actual == "50000"
    assert decide(
        [limit(Side.SELL, 1, "1000")],
        acct(positions={"RELIANCE": 1}, breaker=st, day_unrealised_pnl=D("-10000")),
    ).allowed


def test_max_orders_per_day_counts_basket():
    st = BreakerState(orders_today=199)
    assert decide([limit(Side.BUY, 1, "1000")], acct(breaker=st)).allowed
    d = decide([limit(Side.BUY, 1, "1000"), limit(Side.BUY, 1, "1000")], acct(breaker=st))
    assert names(d) == ["max_orders_per_day"] and (d.failed[0].limit, d.failed[0].actual) == ("200", "201")


def test_max_order_value():
    d = decide([limit(Side.BUY, 10, "1000")], limits=replace(LIM, max_order_value=D("5000")))
    assert names(d) == ["max_order_value"] and d.failed[0].actual == "10000"


def test_fno_orders_have_their_own_notional_limits():
    """One NIFTY lot is 65 x 22,000 = 14.3 lakh notional: above the cash-equity max_order_value
    (10 lakh) but within fno_max_order_value (50 lakh). Four lots (57.2 lakh) are not; the refusal
    names the F&O limit. Positions: 7 lots (1.001 crore) pass max_position_value's 20 lakh but not
    fno_max_position_value's 1 crore."""
    fno = replace(LIM, allowed_segments=frozenset({"EQ", "FO"}))
    rich = acct(cash="100000000")
    one_lot = limit(Side.BUY, 65, "22000", symbol="NIFTYFUT", product=Product.D)
    assert decide([one_lot], rich, fno).allowed
    equity = decide([limit(Side.BUY, 1100, "1000")], rich, fno)  # 11 lakh of cash equity
    assert names(equity) == ["max_order_value"] and "above max_order_value" in equity.failed[0].reason
    four = decide([limit(Side.BUY, 260, "22000", symbol="NIFTYFUT", product=Product.D)], rich, fno)
    assert names(four) == ["max_order_value"]
    assert four.failed[0].limit == "5000000" and four.failed[0].actual == "5720000"
    assert "above fno_max_order_value" in four.failed[0].reason
    held = acct(cash="100000000", positions={"NIFTYFUT": 6 * 65})
    big = decide([one_lot], held, fno)
    assert names(big) == ["max_position"] and big.failed[0].limit == "10000000"
    assert big.failed[0].actual == "10010000" and "fno_max_position_value" in big.failed[0].reason
    assert decide([one_lot], acct(cash="100000000", positions={"NIFTYFUT": 5 * 65}), fno).allowed


def test_max_position_qty_and_value():
    lim = replace(LIM, max_position_qty=100, max_position_value=D("95000"))
    d = decide([limit(Side.BUY, 10, "1000")], acct(positions={"RELIANCE": 95}), lim)
    assert names(d) == ["max_position", "max_position"]
    assert {f.actual for f in d.failed} == {"105", "105000"}
    # reducing an oversized position is never blocked
    assert decide([limit(Side.SELL, 10, "1000")], acct(positions={"RELIANCE": 200}), lim).allowed


def test_buying_power_includes_charges():
    d = decide([limit(Side.BUY, 10, "1000")], acct(cash="10012.47"))
    assert names(d) == ["buying_power"] and d.failed[0].actual == "10012.48"
    assert decide([limit(Side.BUY, 10, "1000")], acct(cash="10012.48")).allowed


def test_sell_reducing_long_needs_no_cash():
    d = decide([limit(Side.SELL, 10, "1000")], acct(cash="0", positions={"RELIANCE": 10}))
    assert d.allowed and d.cash_required == 0


def test_short_selling_rules():
    d = decide([limit(Side.SELL, 10, "1000", product=Product.D)], acct())
    assert names(d) == ["short_selling"]
    d = decide([limit(Side.SELL, 10, "1000")], acct(), replace(LIM, allow_short_selling=False))
    assert names(d) == ["short_selling"]
    # intraday short: 100% margin of notional + charges blocked from cash
    d = decide([limit(Side.SELL, 10, "1000")], acct())
    assert d.allowed and d.cash_required == D("10000") + d.estimated_charges
    half = decide([limit(Side.SELL, 10, "1000")], acct(), replace(LIM, short_margin_pct=D("50")))
    assert half.cash_required == D("5000") + half.estimated_charges


def test_instrument_checks():
    d = decide([limit(Side.BUY, 1, "22000", symbol="NIFTYFUT")])
    assert names(d) == ["instrument"] and d.failed[0].actual == "FO"
    d = decide(
        [limit(Side.BUY, 1, "4000", symbol="TCS")],
        limits=replace(LIM, allowed_symbols=frozenset({"RELIANCE"})),
    )
    assert names(d) == ["instrument"]
    d = decide([limit(Side.BUY, 1, "10", symbol="UNKNOWN")])
    assert "unknown instrument" in d.failed[0].reason


def test_fat_finger_price_collar():
    d = decide([limit(Side.BUY, 1, "1060")])  # 6% from ltp 1000 > 5%
    assert names(d) == ["price_collar"] and d.failed[0].actual == "6.00%"
    assert decide([limit(Side.BUY, 1, "1050")]).allowed


def test_every_failure_listed_together_and_raise():
    st = BreakerState(orders_today=200, day_realised_pnl=D("-60000"))
    lim = replace(LIM, max_order_value=D("100"))
    d = decide([limit(Side.BUY, 10, "1100")], acct(cash="5", breaker=st), lim)
    assert set(names(d)) == {
        "daily_loss_limit",
        "max_orders_per_day",
        "max_order_value",
        "buying_power",
        "price_collar",
    }
    with pytest.raises(RiskRejected) as ei:
        d.raise_if_rejected()
    assert len(ei.value.details["checks"]) == 5


def test_basket_combined_effect_all_or_nothing():
    a = acct(cash="12000")
    assert decide([limit(Side.BUY, 10, "1000")], a).allowed
    d = decide([limit(Side.BUY, 10, "1000"), limit(Side.BUY, 1, "4000", symbol="TCS")], a)
    assert names(d) == ["buying_power"]  # each alone fits, together they do not
    # a sell that closes a long then a buy: projection sees the flat position
    d = decide(
        [limit(Side.SELL, 10, "1000"), limit(Side.BUY, 3, "4000", symbol="TCS")],
        acct(cash="12100", positions={"RELIANCE": 10}),
    )
    assert d.allowed
    # positions accumulate across the basket
    lim = replace(LIM, max_position_qty=15)
    d = decide([limit(Side.BUY, 10, "1000"), limit(Side.BUY, 10, "1000")], limits=lim)
    assert names(d) == ["max_position"] and d.failed[0].actual == "20"


# ---------------------------------------------------------------- merge_limits


def test_merge_limits_tighten_allowed_loosen_denied():
    m = merge_limits(
        LIM, {"max_order_value": "5000", "allowed_symbols": ["reliance"], "short_margin_pct": 150}
    )
    assert m.max_order_value == D("5000") and m.allowed_symbols == frozenset({"RELIANCE"})
    assert m.short_margin_pct == D("150")
    for field, value in [
        ("max_order_value", "2000000"),
        ("allowed_segments", ["EQ", "FO"]),
        ("short_margin_pct", 50),
        ("max_orders_per_day", 201),
    ]:
        with pytest.raises(PermissionDenied) as ei:
            merge_limits(LIM, {field: value})
        assert ei.value.details["field"] == field
    no_short = replace(LIM, allow_short_selling=False, allowed_symbols=frozenset({"TCS"}))
    with pytest.raises(PermissionDenied):
        merge_limits(no_short, {"allow_short_selling": True})
    with pytest.raises(PermissionDenied):
        merge_limits(no_short, {"allowed_symbols": None})
    assert merge_limits(no_short, {"allow_short_selling": True}, by_admin=True).allow_short_selling
    assert merge_limits(LIM, {"max_order_value": "2000000"}, by_admin=True).max_order_value == D("2000000")


def test_merge_limits_rejects_unknown_and_bad_values():
    with pytest.raises(ValidationFailed) as ei:
        merge_limits(LIM, {"nope": 1})
    assert "nope" in ei.value.details
    with pytest.raises(ValidationFailed):
        merge_limits(LIM, {"max_order_value": 1.5})  # floats refused for money


# ---------------------------------------------------------------- circuit breaker


def test_breaker_trips_and_rolls_over():
    cb = TradingCircuitBreaker(max_consecutive_losses=3, daily_loss_limit=D("1000"))
    st = BreakerState()
    for pnl in ("-10", "-10", "5", "-10", "-10"):
        st = cb.record_trade(st, D(pnl), DAY)
    assert st.consecutive_losses == 2 and cb.effective_state(st) is TradingState.ACTIVE
    st = cb.record_trade(st, D("-10"), DAY)
    assert cb.effective_state(st) is TradingState.REDUCING
    assert cb.allows(st, reduces_risk=True) and not cb.allows(st, reduces_risk=False)
    st = cb.record_trade(st, D("-955"), DAY)  # day P&L -45 - 955 = -1000
    # HALTED still lets an exit through (an exit is always possible), nothing else
    assert cb.effective_state(st) is TradingState.HALTED and cb.allows(st, reduces_risk=True)
    assert not cb.allows(st, reduces_risk=False)
    st = cb.record_order(cb.kill(st, "manual"), DAY)
    assert st.orders_today == 1
    nxt = cb.roll_day(st, date(2025, 1, 3))
    assert (nxt.tripped, nxt.day_realised_pnl, nxt.orders_today, nxt.consecutive_losses) == (
        TradingState.ACTIVE,
        D(0),
        0,
        0,
    )
    assert nxt.kill_switch and cb.effective_state(nxt) is TradingState.HALTED
    assert cb.effective_state(cb.release(nxt)) is TradingState.ACTIVE
    assert cb.effective_state(cb.release(nxt), global_kill=True) is TradingState.HALTED


def test_breaker_state_serialises():
    st = BreakerState(DAY, TradingState.REDUCING, "x", 3, D("-12.50"), 7, True, "k")
    blob = json.dumps(st.to_dict())
    assert BreakerState.from_dict(json.loads(blob)) == st


# ---------------------------------------------------------------- sizer


def test_position_sizer_value_binds_and_lots():
    s = PositionSizer(max_position_pct=D("20"), risk_per_trade_pct=D("1"))
    r = s.suggest(D("1000000"), D("1234.50"), stop_price=D("1200"))
    # value: 200000 / 1234.5 = 162.0 -> 162 ; risk: 10000 / 34.5 = 289.8 -> 289
    assert (r.quantity, r.by_value, r.by_risk, r.binding) == (162, 162, 289, "value")
    r = s.suggest(D("1000000"), D("1234.50"), lot_size=25)
    assert r.quantity == 150 and "lot size 25" in r.explanation


def test_position_sizer_risk_binds():
    s = PositionSizer(max_position_pct=D("50"), risk_per_trade_pct=D("1"))
    r = s.suggest(D("1000000"), D("1234.50"), stop_price=D("1200"))  # value 405, risk 289
    assert (r.quantity, r.binding) == (289, "risk")
    assert s.suggest(D("1000000"), D("100"), existing_value=D("500000")).quantity == 0


# ---------------------------------------------------------------- stops


def run_path(pp, path):
    mgr = StopLossManager()
    mgr.protect(pp)
    for i, px in enumerate(path):
        out = mgr.on_tick(pp.symbol, D(px))
        if out:
            return i, out[0], mgr
    return None, None, mgr


def test_trailing_stop_long_on_scripted_path():
    pp = ProtectedPosition(
        "X", 100, Product.I, D("100"), stop_loss=D("95"), take_profit=D("115"), trailing_pct=D("5")
    )
    i, order, mgr = run_path(pp, ["100", "104", "110", "106", "104.6", "104.4", "90"])
    # high-water 110 -> trailing level 104.5; 104.6 holds, 104.4 fires
    assert i == 5 and order.tag == "trailing_stop"
    assert (order.side, order.quantity, order.type, order.product) == (
        Side.SELL,
        100,
        OrderType.MARKET,
        Product.I,
    )
    assert mgr.get("X") is None  # fired once, removed


def test_take_profit_and_stop_loss_long():
    pp = ProtectedPosition("X", 10, Product.D, D("100"), stop_loss=D("95"), take_profit=D("115"))
    i, order, _ = run_path(pp, ["101", "108", "114.95", "115", "116"])
    assert i == 3 and order.tag == "take_profit"
    i, order, _ = run_path(pp, ["99", "97", "95.05", "94.90"])
    assert i == 3 and order.tag == "stop_loss"


def test_trailing_stop_short_absolute():
    pp = ProtectedPosition("X", -50, Product.I, D("100"), trailing_abs=D("2"))
    i, order, _ = run_path(pp, ["99", "97", "98.5", "98.95", "99.0"])
    # low-water 97 -> level 99; fires at 99.0 with a BUY to cover
    assert i == 4 and order.side is Side.BUY and order.quantity == 50 and order.tag == "trailing_stop"


def test_water_mark_updates_and_roundtrip():
    pp = ProtectedPosition("X", 10, Product.I, D("100"), trailing_abs=D("3"))
    mgr = StopLossManager()
    mgr.protect(pp)
    mgr.on_tick("X", D("108"))
    assert mgr.get("X").water_mark == D("108") and mgr.get("X").trailing_level == D("105")
    assert ProtectedPosition.from_dict(mgr.get("X").to_dict()) == mgr.get("X")


def test_protected_position_validation():
    with pytest.raises(ValidationFailed):
        ProtectedPosition("X", 10, Product.I, D("100"), stop_loss=D("101"))
    with pytest.raises(ValidationFailed):
        ProtectedPosition("X", -10, Product.I, D("100"), take_profit=D("101"))


# ---------------------------------------------------------------- metrics

RETURNS = [0.012, -0.008, 0.005, -0.021, 0.017, 0.003, -0.012, 0.009, -0.004, 0.011,
           -0.016, 0.007, 0.002, -0.009, 0.014, -0.003, 0.006, -0.027, 0.010, 0.004]  # fmt: skip


def _quantile_type7(xs, q):
    s = sorted(xs)
    h = (len(s) - 1) * q
    lo = math.floor(h)
    return s[lo] + (h - lo) * (s[min(lo + 1, len(s) - 1)] - s[lo])


def test_var_against_independent_reference():
    calc = RiskMetricsCalculator()
    # h = 19 * 0.05 = 0.95 -> -0.027 + 0.95 * (-0.021 + 0.027) = -0.0213
    assert calc.historical_var(RETURNS, 0.95) == pytest.approx(0.0213, abs=1e-12)
    assert calc.historical_var(RETURNS, 0.99) == pytest.approx(-_quantile_type7(RETURNS, 0.01))
    mu, sd = statistics.mean(RETURNS), statistics.stdev(RETURNS)
    assert calc.parametric_var(RETURNS, 0.95) == pytest.approx(-(mu - 1.6448536269514722 * sd))
    assert calc.parametric_var(RETURNS, 0.99) == pytest.approx(-(mu - 2.3263478740408408 * sd))


def test_sharpe_sortino_drawdown_against_reference():
    calc = RiskMetricsCalculator()
    mu, sd = statistics.mean(RETURNS), statistics.stdev(RETURNS)
    assert calc.sharpe(RETURNS) == pytest.approx(mu / sd * math.sqrt(252))
    dd = math.sqrt(sum(min(r, 0) ** 2 for r in RETURNS) / len(RETURNS)) * math.sqrt(252)
    assert calc.sortino(RETURNS) == pytest.approx(mu * 252 / dd)
    assert calc.max_drawdown([100, 120, 90, 95, 130, 110]) == (pytest.approx(0.25), 3)
    rep = calc.report([D("100"), D("120"), D("90"), D("95"), D("130"), D("110")])
    assert rep.max_drawdown == pytest.approx(0.25) and rep.max_drawdown_duration == 3
    assert json.dumps(rep.to_dict())


def test_exposure_gross_net():
    e = RiskMetricsCalculator.exposure({"A": 10, "B": -5}, {"A": D("100"), "B": D("200")}, D("10000"))
    assert (e.gross, e.net, e.long, e.short) == (D("2000"), D("0"), D("1000"), D("1000"))
    assert e.gross_pct_equity == D("20")


def test_new_trip_is_a_rise_in_severity_today():
    from datetime import date

    from backend.domain.risk.circuit_breaker import BreakerState, TradingState, new_trip

    today, yesterday = date(2026, 12, 3), date(2026, 12, 2)
    reducing = BreakerState(trading_day=today, tripped=TradingState.REDUCING)
    halted = BreakerState(trading_day=today, tripped=TradingState.HALTED)
    assert new_trip({}, reducing) is TradingState.REDUCING
    assert new_trip(reducing.to_dict(), reducing) is None  # still REDUCING: not a new trip
    assert new_trip(reducing.to_dict(), halted) is TradingState.HALTED
    assert new_trip(halted.to_dict(), reducing) is None  # never downwards
    assert new_trip(BreakerState(trading_day=today).to_dict(), BreakerState(trading_day=today)) is None
    # yesterday's HALTED was cleared by the new day: today's HALTED is a new trip
    assert new_trip(BreakerState(trading_day=yesterday, tripped=TradingState.HALTED).to_dict(), halted) is (
        TradingState.HALTED
    )
