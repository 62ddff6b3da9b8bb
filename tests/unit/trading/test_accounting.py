import random
from dataclasses import dataclass
from decimal import Decimal as D
from fractions import Fraction

import pytest

from backend.domain.accounting import (
    Position,
    apply_fill,
    cash_from_ledger,
    net_cash_flow,
    position_from_trades,
    unrealised_pnl,
)
from backend.domain.orders.types import Side


@dataclass
class T:
    side: Side
    quantity: int
    price: D


@dataclass
class Entry:
    amount: D


def test_average_cost_add_reduce_flip_and_cover():
    p = Position()
    p = apply_fill(p, Side.BUY, 10, D("100")).position
    p = apply_fill(p, Side.BUY, 10, D("110")).position
    assert (p.qty, p.avg_price, p.cost_basis) == (20, D("105"), D("2100"))
    r = apply_fill(p, Side.SELL, 5, D("120"))  # removes 2100 * 5/20 = 525; 600 - 525 = 75
    assert r.realised == D("75") and r.position.qty == 15 and r.position.avg_price == D("105")
    r = apply_fill(r.position, Side.SELL, 20, D("90"))  # close 15: 1350 - 1575 = -225, open short 5 @ 90
    assert r.realised == D("-225") and (r.closed_qty, r.opened_qty) == (15, 5)
    assert (r.position.qty, r.position.avg_price) == (-5, D("90"))
    r = apply_fill(r.position, Side.BUY, 5, D("80"))  # short covered 10 lower: +50
    assert r.realised == D("50") and r.position.qty == 0 and r.position.cost_basis == 0
    assert r.position.realised_pnl == D("-100")  # == -1000 - 1100 + 600 + 1800 - 400


def test_short_to_long_flip():
    p = apply_fill(Position(), Side.SELL, 10, D("50")).position
    r = apply_fill(p, Side.BUY, 15, D("45"))  # cover 10: +50; long 5 @ 45
    assert r.realised == D("50") and (r.position.qty, r.position.avg_price) == (5, D("45"))


def test_non_terminating_average_is_exact_when_flat():
    p = Position()
    for px in ("10", "10", "11"):
        p = apply_fill(p, Side.BUY, 1, D(px)).position
    r1 = apply_fill(p, Side.SELL, 1, D("12"))  # removes 31/3 = 10.333.. -> 10.33
    assert r1.realised == D("1.67")
    r2 = apply_fill(r1.position, Side.SELL, 2, D("12"))  # removes the rest 20.67
    assert r2.realised == D("3.33")
    assert r2.position.realised_pnl == D("5.00")  # 36 - 31 exactly


def test_unrealised_pnl():
    p = apply_fill(Position(), Side.BUY, 10, D("100.50")).position
    assert unrealised_pnl(p, D("101")) == D("5.00")
    s = apply_fill(Position(), Side.SELL, 10, D("100")).position
    assert unrealised_pnl(s, D("98")) == D("20")


def test_zero_quantity_fill_rejected():
    with pytest.raises(ValueError):
        apply_fill(Position(), Side.BUY, 0, D("1"))


def test_cash_from_ledger_exact_sum():
    entries = [Entry(D("100000.00")), Entry(D("-50015.10")), D("0.10"), Entry(D("-30.22"))]
    assert cash_from_ledger(entries) == D("49954.78")


def test_randomised_sequence_invariants_fixed_seed():
    rng = random.Random(20250101)
    trades: list[T] = []
    pos = Position()
    ref_qty, ref_cost, ref_realised = 0, Fraction(0), Fraction(0)  # exact rational average-cost reference
    partial_closes = 0
    ledger = [D("1000000.00")]
    for _ in range(600):
        side = rng.choice([Side.BUY, Side.SELL])
        qty = rng.randint(1, 40)
        price = D(rng.randint(5000, 15000)) / 100
        t = T(side, qty, price)
        trades.append(t)
        res = apply_fill(pos, side, qty, price)
        pos = res.position
        ledger.append(-price * qty if side is Side.BUY else price * qty)
        # reference
        s = qty if side is Side.BUY else -qty
        if ref_qty and (ref_qty > 0) != (s > 0):
            k = min(qty, abs(ref_qty))
            partial_closes += k < abs(ref_qty)
            removed = ref_cost * k / abs(ref_qty)
            ref_realised += -(k if s > 0 else -k) * Fraction(price) - removed
            ref_cost -= removed
            ref_qty += k if s > 0 else -k
            s = (qty - k) * (1 if s > 0 else -1)
        ref_cost += s * Fraction(price)
        ref_qty += s

        # invariants, exact
        assert pos.qty == ref_qty == sum(x.quantity if x.side is Side.BUY else -x.quantity for x in trades)
        assert net_cash_flow(trades) == pos.realised_pnl - pos.cost_basis
        assert cash_from_ledger(ledger) == D("1000000.00") + net_cash_flow(trades)
        # paisa rounding of removed cost is the only deviation from the rational reference
        assert abs(Fraction(pos.realised_pnl) - ref_realised) <= Fraction(1, 200) * partial_closes
        if pos.qty == 0:
            assert pos.realised_pnl == net_cash_flow(trades)
    assert position_from_trades(trades) == pos
    assert partial_closes > 10  # the sequence really exercised partial closes
