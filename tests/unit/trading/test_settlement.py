"""Expiry settlement arithmetic (backend/domain/orders/settlement.py), numbers by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from backend.domain.accounting import Position, apply_fill
from backend.domain.errors import ValidationFailed
from backend.domain.orders.settlement import (
    ASSIGNED,
    EXERCISED,
    EXPIRED,
    FUTURE_SETTLED,
    intrinsic_value,
    settle_position,
)
from backend.domain.orders.types import Side
from backend.domain.risk import BreakerState, TradingCircuitBreaker, TradingState

D = Decimal
S = D("26180.35")  # NIFTY's close on expiry day: the final settlement price


def test_intrinsic_value():
    assert intrinsic_value("CE", D("26000"), S) == D("180.35")
    assert intrinsic_value("PE", D("26000"), S) == 0
    assert intrinsic_value("PE", D("26300"), S) == D("119.65")
    with pytest.raises(ValidationFailed):
        intrinsic_value("FUT", D("26000"), S)


def test_long_itm_call_is_exercised_with_exercise_stt():
    # 65 x 26000 CE, bought at 120: intrinsic 180.35 x 65 = 11,722.75 received;
    # STT 0.15% of 11,722.75 = 17.584125 -> 17.58
    s = settle_position("CE", 65, S, D("26000"), D("0.15"))
    assert (s.outcome, s.side, s.quantity, s.price, s.value, s.stt) == (
        EXERCISED,
        Side.SELL,
        65,
        D("180.35"),
        D("11722.75"),
        D("17.58"),
    )
    # booked at average cost: realised = 11,722.75 - 65 x 120 = 3,922.75 (gross of STT)
    r = apply_fill(Position(65, D("7800"), D(0)), s.side, s.quantity, s.price)
    assert (r.realised, r.position.qty) == (D("3922.75"), 0)
    # before 1 Apr 2026 the exercise rate was 0.125%: 14.6534375 -> 14.65
    assert settle_position("CE", 65, S, D("26000"), D("0.125")).stt == D("14.65")


def test_short_itm_call_is_assigned_and_pays_the_intrinsic_value_without_stt():
    # written 130 x 26100 CE at 150 (premium 19,500 received); intrinsic 80.35 x 130 = 10,445.50 paid
    s = settle_position("CE", -130, S, D("26100"), D("0.15"))
    assert (s.outcome, s.side, s.price, s.value, s.stt) == (ASSIGNED, Side.BUY, D("80.35"), D("-10445.50"), 0)
    r = apply_fill(Position(-130, D("-19500"), D(0)), s.side, s.quantity, s.price)
    assert r.realised == D("9054.50")  # 19,500 - 10,445.50


def test_otm_options_expire_worthless_long_or_short():
    long_put = settle_position("PE", 65, S, D("26000"), D("0.15"))
    assert (long_put.outcome, long_put.price, long_put.value, long_put.stt) == (EXPIRED, 0, 0, 0)
    r = apply_fill(Position(65, D("3250"), D(0)), long_put.side, 65, long_put.price)
    assert r.realised == D("-3250")  # the premium paid is lost
    short_call = settle_position("CE", -65, S, D("26500"))
    assert (short_call.outcome, short_call.side, short_call.value) == (EXPIRED, Side.BUY, 0)
    # an option exactly at the money has no intrinsic value either
    assert settle_position("CE", 65, D("26000"), D("26000"), D("0.15")).outcome == EXPIRED


def test_futures_settle_at_the_final_price():
    # long 65 NIFTY FUT bought at 26,100 (booked -16,96,500); settles at 26,180.35 = 17,01,722.75
    s = settle_position("FUT", 65, S)
    assert (s.outcome, s.side, s.price, s.value, s.stt) == (FUTURE_SETTLED, Side.SELL, S, D("1701722.75"), 0)
    r = apply_fill(Position(65, D("1696500"), D(0)), s.side, 65, s.price)
    assert r.realised == D("5222.75")  # 65 x 80.35
    short = settle_position("FUT", -30, D("59000"))
    assert (short.side, short.value) == (Side.BUY, D("-1770000"))


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("CE", 0, S, D("26000")), "quantity"),
        (("CE", 65, D("0"), D("26000")), "final_price"),
        (("CE", 65, S, None), "kind"),
        (("EQ", 65, S, None), "kind"),
    ],
)
def test_bad_settlements_are_refused(args, field):
    with pytest.raises(ValidationFailed) as exc:
        settle_position(*args)
    assert field in exc.value.details


# ---------------------------------------------------------------- what the breaker is given
# The service books each settlement through the ledger (average cost) and hands the breaker the
# realised P&L net of exercise STT, one trade per account and expiry; these are those numbers.

DAY = date(2026, 12, 29)


def _settled_pnl(s, position: Position) -> Decimal:
    """Realised P&L of booking settlement ``s`` against ``position``, net of its STT."""
    return apply_fill(position, s.side, s.quantity, s.price).realised - s.stt


def test_a_long_option_expiring_worthless_is_a_losing_trade_that_can_halt():
    breaker = TradingCircuitBreaker(max_consecutive_losses=3, daily_loss_limit=D("1000"))
    # 65 x 26000 PE bought at 20 (1,300 paid), NIFTY closes at 26,180.35: worthless, no STT
    pnl = _settled_pnl(settle_position("PE", 65, S, D("26000"), D("0.15")), Position(65, D("1300"), D(0)))
    assert pnl == D("-1300")
    st = breaker.record_trade(BreakerState(trading_day=DAY, consecutive_losses=1), pnl, DAY)
    assert (st.consecutive_losses, st.day_realised_pnl, st.tripped) == (2, D("-1300"), TradingState.HALTED)
    assert st.trip_reason == "daily loss 1300.00 reached limit 1000"
    # halted: new risk is refused, an exit still passes
    assert not TradingCircuitBreaker.allows(st, reduces_risk=False)
    assert TradingCircuitBreaker.allows(st, reduces_risk=True)


def test_an_exercised_option_net_of_stt_is_a_winning_trade_that_resets_the_count():
    breaker = TradingCircuitBreaker(max_consecutive_losses=3, daily_loss_limit=D("50000"))
    # 65 x 26000 CE bought at 120 (7,800): exercised at 180.35, 11,722.75 received, STT 17.58
    pnl = _settled_pnl(settle_position("CE", 65, S, D("26000"), D("0.15")), Position(65, D("7800"), D(0)))
    assert pnl == D("3905.17")  # 3,922.75 - 17.58
    before = BreakerState(trading_day=DAY, consecutive_losses=2, day_realised_pnl=D("-684.85"))
    st = breaker.record_trade(before, pnl, DAY)
    assert (st.consecutive_losses, st.day_realised_pnl, st.tripped) == (0, D("3220.32"), TradingState.ACTIVE)


def test_a_condor_expiring_is_one_trade_not_four():
    """NIFTY 26,180.35 at expiry; a condor written for a net 40 x 65 = 2,600 credit: long 25800 PE
    (paid 10), short 25900 PE (got 25), short 26100 CE (got 40), long 26200 CE (paid 15). The
    26100 CE is assigned at 80.35. Summed as the service sums them, one losing trade."""
    legs = [
        ("PE", 65, D("25800"), Position(65, D("650"), D(0))),
        ("PE", -65, D("25900"), Position(-65, D("-1625"), D(0))),
        ("CE", -65, D("26100"), Position(-65, D("-2600"), D(0))),
        ("CE", 65, D("26200"), Position(65, D("975"), D(0))),
    ]
    pnls = [_settled_pnl(settle_position(k, q, S, strike, D("0.15")), p) for k, q, strike, p in legs]
    # -650, +1,625, 2,600 - 80.35 x 65 = 2,600 - 5,222.75 = -2,622.75, -975
    assert pnls == [D("-650"), D("1625"), D("-2622.75"), D("-975")]
    breaker = TradingCircuitBreaker(max_consecutive_losses=3, daily_loss_limit=D("50000"))
    one = breaker.record_trade(BreakerState(trading_day=DAY), sum(pnls, D(0)), DAY)
    assert (one.consecutive_losses, one.day_realised_pnl) == (1, D("-2622.75"))
    # leg by leg the count would depend on the legs' order: 1, 0, 1, 2 here
    st = BreakerState(trading_day=DAY)
    for pnl in pnls:
        st = breaker.record_trade(st, pnl, DAY)
    assert (st.consecutive_losses, st.day_realised_pnl) == (2, D("-2622.75"))
