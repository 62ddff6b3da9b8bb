"""Expiry settlement arithmetic (backend/domain/orders/settlement.py), numbers by hand."""

from __future__ import annotations

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
