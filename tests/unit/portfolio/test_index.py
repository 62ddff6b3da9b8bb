"""Rebalancing, charges on rebalances, incremental continuation and the investment simulation."""

from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pytest

from backend.domain.charges import ChargeSchedule, ProductRates, SegmentRates
from backend.domain.errors import ValidationFailed
from backend.domain.orders.types import Product
from backend.domain.portfolio import (
    IndexSpec,
    align_rates,
    drift_exceeded,
    index_levels,
    rebalance_charges,
    run_index,
)
from backend.domain.portfolio.simulation import simulate_investment


def _schedule() -> ChargeSchedule:
    """Rs 20 per order plus 0.1% of turnover (STT-like), nothing else: easy to follow by hand."""
    d = ProductRates(
        "flat", brokerage_flat=Decimal(20), stt_buy_pct=Decimal("0.1"), stt_sell_pct=Decimal("0.1")
    )
    seg = SegmentRates(exchange_txn_pct=Decimal(0), sebi_fee_per_crore=Decimal(0), products={Product.D: d})
    return ChargeSchedule(gst_pct=Decimal(0), segments={"EQ": seg})


def _days(n: int, start: date = date(2024, 1, 1)) -> list[date]:
    out, d = [], start
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    return out


def test_drift_band_rebalance_hand_computed_with_charges():
    spec = IndexSpec(("A", "B"), "custom", "drift", custom_weights={"A": 1, "B": 1}, drift_threshold=0.05)
    days = _days(4)
    closes = np.array([[100.0, 100.0], [110.0, 100.0], [130.0, 100.0], [130.0, 100.0]])
    run = run_index(spec, days, closes, 0, 100_000.0, schedule=_schedule())

    # Day 0: two buys of (100000 - c) / 2 each; c = 2 * (20 + 0.1% of that), to the paisa:
    # 0 -> 140.00 -> 139.86 -> 139.86 (each buy 49930.07, charge 20 + 49.93).
    first = run.rebalances[0]
    assert first.day == days[0]
    assert first.charges == [Decimal("69.93"), Decimal("69.93")]
    assert first.units_after.tolist() == pytest.approx([499.3007, 499.3007])
    assert run.equity[0] == pytest.approx(99_860.14)
    # Day 1: A at 110 weighs 54923.077 / 104853.147 = 0.5238: within 0.05 of 0.5, no trade.
    assert run.equity[1] == pytest.approx(499.3007 * 110 + 49_930.07)
    # Day 2: A at 130 weighs 64909.091 / 114839.161 = 0.5652 > 0.55: rebalance to 50/50.
    # Sell A 7517.0005 (20 + 7.52), buy B 7462.0205 (20 + 7.46): c = 54.98 (first guess 54.98 too).
    assert [r.day for r in run.rebalances] == [days[0], days[2]]
    second = run.rebalances[1]
    assert second.value_before == pytest.approx(114_839.161)
    assert second.charges == [Decimal("27.52"), Decimal("27.46")]
    assert second.total_charges == Decimal("54.98")
    half = (114_839.161 - 54.98) / 2
    assert second.units_after.tolist() == pytest.approx([half / 130, half / 100])
    assert run.equity[2] == pytest.approx(114_839.161 - 54.98)
    assert run.equity[3] == pytest.approx(run.equity[2])  # prices unchanged, no rebalance
    assert run.cash == pytest.approx(np.zeros(4), abs=0.01)  # an index is fully invested


def test_relative_drift_band():
    target = np.array([0.9, 0.1])
    assert not drift_exceeded(np.array([0.88, 0.12]), target, 0.05, "absolute")
    assert drift_exceeded(np.array([0.88, 0.12]), target, 0.05, "relative")  # 0.12 / 0.1 - 1 = 20%
    assert not drift_exceeded(np.array([0.895, 0.105]), target, 0.1, "relative")


def test_monthly_and_quarterly_rebalance_on_the_first_trading_day_of_the_period():
    days = _days(140)  # 2024-01-01 .. mid July
    rng = np.random.default_rng(5)
    closes = 100 * np.cumprod(1 + rng.normal(0, 0.01, size=(140, 3)), axis=0)
    monthly = run_index(IndexSpec(("A", "B", "C"), "equal", "monthly"), days, closes, 0, 1e6)
    firsts = [d for i, d in enumerate(days) if i == 0 or d.month != days[i - 1].month]
    assert [r.day for r in monthly.rebalances] == firsts
    quarterly = run_index(IndexSpec(("A", "B", "C"), "equal", "quarterly"), days, closes, 0, 1e6)
    assert [r.day.isoformat() for r in quarterly.rebalances] == ["2024-01-01", "2024-04-01", "2024-07-01"]
    never = run_index(IndexSpec(("A", "B", "C"), "equal", "never"), days, closes, 0, 1e6)
    assert len(never.rebalances) == 1
    # buy and hold without charges: value = sum of units * price, units fixed at day 0
    units = 1e6 / 3 / closes[0]
    assert never.equity.tolist() == pytest.approx((closes @ units).tolist())


def test_equal_weight_monthly_value_hand_computed_without_charges():
    days = [date(2024, 1, 30), date(2024, 1, 31), date(2024, 2, 1), date(2024, 2, 2)]
    closes = np.array([[100.0, 100.0], [200.0, 100.0], [200.0, 100.0], [200.0, 200.0]])
    run = run_index(IndexSpec(("A", "B"), "equal", "monthly"), days, closes, 0, 1000.0)
    # Jan 30: 5 A + 5 B = 1000; Jan 31: 5*200 + 5*100 = 1500; Feb 1 rebalances 1500 to 3.75 A + 7.5 B;
    # Feb 2: 3.75*200 + 7.5*200 = 2250
    assert run.equity.tolist() == pytest.approx([1000, 1500, 1500, 2250])
    assert run.rebalances[1].units_after.tolist() == pytest.approx([3.75, 7.5])
    assert index_levels(run.equity, 1000.0, 1000.0).tolist() == pytest.approx([1000, 1500, 1500, 2250])


@pytest.mark.parametrize("weighting", ["equal", "inverse_volatility", "risk_parity", "min_variance"])
@pytest.mark.parametrize("rule", ["monthly", "drift"])
def test_computing_in_two_steps_equals_computing_once(weighting, rule):
    days = _days(300)
    rng = np.random.default_rng(11)
    closes = 100 * np.cumprod(1 + rng.normal(0.0003, 0.012, size=(300, 4)), axis=0)
    spec = IndexSpec(("A", "B", "C", "D"), weighting, rule, lookback=40, drift_threshold=0.03)
    whole = run_index(spec, days, closes, 40, 1e7, schedule=ChargeSchedule.default())
    head = run_index(spec, days[:200], closes[:200], 40, 1e7, schedule=ChargeSchedule.default())
    tail = run_index(spec, days, closes, 200, 1e7, schedule=ChargeSchedule.default(), state=head.final)
    joined = np.concatenate([head.equity, tail.equity])
    assert joined.tolist() == pytest.approx(whole.equity.tolist(), rel=1e-12)
    assert [r.day for r in head.rebalances + tail.rebalances] == [r.day for r in whole.rebalances]


def test_continuation_must_start_the_day_after_the_holdings():
    days = _days(10)
    closes = np.full((10, 2), 100.0)
    spec = IndexSpec(("A", "B"))
    head = run_index(spec, days[:5], closes[:5], 0, 1000.0)
    with pytest.raises(ValidationFailed, match="day before the first day"):
        run_index(spec, days, closes, 7, 1000.0, state=head.final)


def test_risk_weighting_needs_its_lookback_before_the_first_day():
    days = _days(30)
    closes = np.full((30, 2), 100.0)
    with pytest.raises(ValidationFailed, match="needs 20 daily returns"):
        run_index(IndexSpec(("A", "B"), "inverse_volatility", lookback=20), days, closes, 10, 1000.0)


def test_whole_shares_keep_the_rest_in_cash_and_never_overspend():
    days = _days(3)
    closes = np.array([[333.0, 1234.5], [340.0, 1200.0], [350.0, 1100.0]])
    spec = IndexSpec(("A", "B"), "equal", "never")
    run = run_index(spec, days, closes, 0, 10_000.0, whole_shares=True, schedule=_schedule())
    first = run.rebalances[0]
    # 5000 a leg: A floor(5000/333) = 15 (4995), B floor(5000/1234.5) = 4 (4938); charges
    # 20 + 4.995 -> 25.00 (half-up) and 20 + 4.938 -> 24.94; 9933 + 49.94 fits in 10000.
    assert first.units_after.tolist() == [15.0, 4.0]
    assert first.charges == [Decimal("25.00"), Decimal("24.94")]
    assert run.cash[0] == pytest.approx(10_000 - 4995 - 4938 - 49.94)
    assert run.equity[2] == pytest.approx(17.06 + 15 * 350 + 4 * 1100)


def test_whole_shares_shrink_the_budget_until_shares_and_charges_fit():
    days = _days(1)
    run = run_index(
        IndexSpec(("A", "B"), "equal", "never"),
        days,
        np.array([[100.0, 100.0]]),
        0,
        10_000.0,
        whole_shares=True,
        schedule=_schedule(),
    )
    # 50 + 50 shares cost all 10000 and leave nothing for 2 * 25 of charges: 49 + 49 shares,
    # charges 2 * (20 + 4.90), cash 10000 - 9800 - 49.80
    assert run.rebalances[0].units_after.tolist() == [49.0, 49.0]
    assert run.rebalances[0].total_charges == Decimal("49.80")
    assert run.cash[0] == pytest.approx(150.20)


def test_rebalance_charges_use_the_rates_of_the_day():
    sched = ChargeSchedule.default()  # NSE exchange charge 0.00322% before 1 Oct 2024, 0.00297% after
    before = rebalance_charges(sched, date(2024, 9, 30), np.array([100.0]), np.array([1000.0]))
    after = rebalance_charges(sched, date(2024, 10, 1), np.array([100.0]), np.array([1000.0]))
    b = sched.order_charges("BUY", Product.D, Decimal("100000"), on=date(2024, 9, 30)).total
    a = sched.order_charges("BUY", Product.D, Decimal("100000"), on=date(2024, 10, 1)).total
    assert before == [b] and after == [a] and a != b
    sell = rebalance_charges(sched, date(2024, 10, 1), np.array([-100.0, 0.0]), np.array([1000.0, 5.0]))
    assert sell == [sched.order_charges("SELL", Product.D, Decimal("100000"), on=date(2024, 10, 1)).total, 0]


def test_spec_validation_names_the_field():
    with pytest.raises(ValidationFailed) as e:
        IndexSpec(("A",), "equal", "drift").validate()
    assert "drift_threshold" in e.value.details["fields"]
    with pytest.raises(ValidationFailed) as e:
        IndexSpec(("A", "A")).validate()
    assert "symbols" in e.value.details["fields"]
    with pytest.raises(ValidationFailed) as e:
        IndexSpec(("A",), "magic").validate()
    assert "weighting" in e.value.details["fields"]


def test_align_rates_carries_the_last_rate_over_holidays():
    days = [date(2024, 1, 5), date(2024, 1, 8), date(2024, 1, 9)]
    rates = {date(2024, 1, 4): 83.0, date(2024, 1, 5): 83.5, date(2024, 1, 9): 84.0}
    assert align_rates(days, rates).tolist() == [83.5, 83.5, 84.0]
    with pytest.raises(ValidationFailed, match="no FX rate on or before 2024-01-05"):
        align_rates(days, {date(2024, 1, 8): 1.0})


def test_simulation_in_a_foreign_currency():
    days = _days(3)
    closes = np.array([[100.0, 200.0], [110.0, 200.0], [110.0, 220.0]])
    fx = np.array([80.0, 82.0, 84.0])  # INR per USD
    res = simulate_investment(IndexSpec(("A", "B"), "equal", "never"), days, closes, 0, 1000.0, fx)
    # 1000 USD = 80000 INR: 400 A + 200 B; values 80000, 84000, 88000 INR
    assert res.run.rebalances[0].units_after.tolist() == [400.0, 200.0]
    assert res.value.tolist() == pytest.approx([1000.0, 84_000 / 82, 88_000 / 84])
    assert res.invested == 1000.0
    assert res.total_return == pytest.approx(88_000 / 84 / 1000 - 1)
    with pytest.raises(ValidationFailed) as e:
        simulate_investment(IndexSpec(("A", "B")), days, closes, 0, 0.0, fx)
    assert "amount" in e.value.details["fields"]
