"""A backtest across 1 Apr 2026 pays each trade's charges at the rates of its own date: futures STT
on a sale is 0.02% before and 0.05% from that day (Finance Bill 2026; config/trading.yaml)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from backend.domain.backtest import run_backtest
from backend.domain.charges import ChargeSchedule
from backend.services.backtests import charges_cost_function

NAN = np.nan
DAYS = ["2026-03-25", "2026-03-26", "2026-03-27", "2026-03-30", "2026-03-31", "2026-04-01", "2026-04-02"]


def _data() -> dict:
    flat = np.full(len(DAYS), 27000.0)  # flat prices: the trades' P&L is their charges alone
    return {
        "open": flat,
        "high": flat,
        "low": flat,
        "close": flat,
        "time": np.array(DAYS, dtype="datetime64[ns]"),
    }


def test_each_trade_pays_the_rates_of_its_date():
    cost = charges_cost_function("D", "FUT", ChargeSchedule.default())
    # long from the 26 Mar open to the 27 Mar open, again from 31 Mar to 1 Apr
    target = np.array([1, 0, NAN, 1, 0, NAN, NAN])
    res = run_backtest(_data(), target=target, cash=1_760_000, commission=cost)
    first, second = res.trades
    assert (first.size, second.size) == (65, 65)  # 65 x 27,000 = 17,55,000 fits; 66 does not
    # By hand, 65 x 27,000 = 17,55,000 each side, futures schedule:
    #   buy:  brokerage 20 + txn 0.00173% 30.36 + SEBI 1.76 + IPFT 1.76 + GST 18% of 53.88 = 9.70
    #         + stamp 0.002% 35.10                                              = 98.68 (both dates)
    #   sell on 27 Mar 2026: STT 0.02% = 351.00 + 20 + 30.36 + 1.76 + 1.76 + 9.70 = 414.58
    #   sell on  1 Apr 2026: STT 0.05% = 877.50 + 20 + 30.36 + 1.76 + 1.76 + 9.70 = 941.08
    assert first.commission == pytest.approx(98.68 + 414.58, abs=1e-9)
    assert second.commission == pytest.approx(98.68 + 941.08, abs=1e-9)
    assert res.equity[-1] == pytest.approx(1_760_000 - (98.68 + 414.58) - (98.68 + 941.08), abs=1e-6)


def test_the_cost_function_takes_the_trade_date_and_defaults_to_today():
    cost = charges_cost_function("D", "FUT", ChargeSchedule.default())
    assert cost("sell", 65, 27000.0, date(2026, 3, 31)) == pytest.approx(414.58)
    assert cost("sell", 65, 27000.0, date(2026, 4, 1)) == pytest.approx(941.08)
    assert cost("sell", 65, 27000.0) == pytest.approx(941.08)  # no date: today's (Dec 2026) rates


def test_a_three_argument_cost_function_still_works_without_dates():
    seen = []

    def cost(side: str, qty: float, price: float) -> float:
        seen.append(side)
        return 20.0

    res = run_backtest(
        _data(), target=np.array([1, 0, NAN, NAN, NAN, NAN, NAN]), cash=1_000_000, commission=cost
    )
    assert res.trades[0].commission == 40.0 and "sell" in seen


# --------------------------------------------------------------------------- portfolio backtests


def _portfolio_bars() -> dict:
    return {"A": _data(), "B": _data()}


@pytest.mark.parametrize("mode", ["targets", "schedule"])
def test_a_portfolio_pays_each_order_at_the_rates_of_its_date(mode):
    """One cash account, two futures: A is sold on 27 Mar 2026 (STT 0.02%), B on 1 Apr (0.05%)."""
    from backend.domain.backtest.multi import run_portfolio

    cost = charges_cost_function("D", "FUT", ChargeSchedule.default())
    if mode == "targets":
        kwargs = {
            "targets": {
                "A": np.array([1, 0, NAN, NAN, NAN, NAN, NAN]),  # A: in at 26 Mar open, out at 27 Mar
                "B": np.array([NAN, NAN, NAN, 1, 0, NAN, NAN]),  # B: in at 31 Mar open, out at 1 Apr
            }
        }
    else:  # the same orders as dated target weights (each row decided on its date's close)
        kwargs = {
            "schedule": [
                ("2026-03-25", {"A": 1.0}),
                ("2026-03-26", {"A": 0.0}),
                ("2026-03-30", {"B": 1.0}),
                ("2026-03-31", {"B": 0.0}),
            ]
        }
    res = run_portfolio(_portfolio_bars(), cash=1_760_000, commission=cost, **kwargs)
    # 65 x 27,000 = 17,55,000 per entry (66 does not fit); by hand, as the single-asset test above:
    # buy 98.68 on either date; sell 414.58 on 27 Mar 2026, 941.08 on 1 Apr 2026
    assert [(f.symbol, f.bar, f.side, f.qty) for f in res.fills] == [
        ("A", 1, "buy", 65),
        ("A", 2, "sell", 65),
        ("B", 4, "buy", 65),
        ("B", 5, "sell", 65),
    ]
    assert [f.commission for f in res.fills] == pytest.approx([98.68, 414.58, 98.68, 941.08], abs=1e-9)
    a, b = res.trades
    assert a.commission == pytest.approx(98.68 + 414.58, abs=1e-9)
    assert b.commission == pytest.approx(98.68 + 941.08, abs=1e-9)
    # flat prices: the equity falls by the charges alone, 17,60,000 - 513.26 - 1,039.76
    assert res.equity[-1] == pytest.approx(1_758_446.98, abs=1e-6)
