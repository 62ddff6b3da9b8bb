"""Dated rates, per-order brokerage, futures and options schedules: contract notes by hand."""

from datetime import date
from decimal import Decimal as D

import pytest
import yaml

from backend.domain.charges import (
    DEFAULT_CONFIG_PATH,
    TradingConfigError,
    charge_segment,
    load_trading_config,
    parse_trading_config,
)
from backend.domain.orders.types import Product, Side

SCHED = load_trading_config().charges


def _raw():
    with open(DEFAULT_CONFIG_PATH) as fh:
        return yaml.safe_load(fh)


def test_option_sell_stt_is_015_pct_from_1_april_2026_and_01_pct_the_day_before():
    # 65 x 400 = 26000 of premium, sold (product D = NRML)
    # brokerage flat 20; NSE txn 0.03503% = 9.1078 -> 9.11; SEBI 0.026 -> 0.03; IPFT Rs 50/crore = 0.13
    # GST 18% x (20 + 9.11 + 0.03 + 0.13 = 29.27) = 5.2686 -> 5.27
    # 31 Mar 2026: STT 0.1% = 26.00 -> total 60.54 ; 1 Apr 2026: STT 0.15% = 39.00 -> total 73.54
    before = SCHED.estimate(Side.SELL, Product.D, 65, D("400"), "FO", on=date(2026, 3, 31))
    after = SCHED.estimate(Side.SELL, Product.D, 65, D("400"), "FO", on=date(2026, 4, 1))
    assert (before.stt, before.exchange_txn, before.ipft, before.gst, before.total) == (
        D("26.00"), D("9.11"), D("0.13"), D("5.27"), D("60.54"),
    )  # fmt: skip
    assert (after.stt, after.total) == (D("39.00"), D("73.54"))


def test_option_sell_before_october_2024_uses_that_days_rates():
    # 30 Sep 2024: STT 0.0625% = 16.25; NSE txn 0.0495% = 12.87; SEBI 0.03; IPFT 0.13
    # GST 18% x (20 + 12.87 + 0.03 + 0.13 = 33.03) = 5.9454 -> 5.95; total 55.23
    c = SCHED.estimate(Side.SELL, Product.D, 65, D("400"), "FO", on=date(2024, 9, 30))
    assert (c.stt, c.exchange_txn, c.gst, c.total) == (D("16.25"), D("12.87"), D("5.95"), D("55.23"))


def test_nifty_future_contract_note_buy_and_sell():
    # 65 x 27000 = 1755000 traded value
    # brokerage min(0.05% = 877.50, 20) = 20; NSE txn 0.00173% = 30.3615 -> 30.36
    # SEBI 1.755 -> 1.76; IPFT Rs 10/crore = 1.76; GST 18% x (20 + 30.36 + 1.76 + 1.76 = 53.88) = 9.70
    # buy:  stamp 0.002% = 35.10                  -> 20 + 30.36 + 1.76 + 1.76 + 9.70 + 35.10 = 98.68
    # sell: STT 0.05% (from 1 Apr 2026) = 877.50  -> 20 + 877.50 + 30.36 + 1.76 + 1.76 + 9.70 = 941.08
    buy = SCHED.estimate(Side.BUY, Product.D, 65, D("27000"), "FUT", on=date(2026, 12, 2))
    sell = SCHED.estimate(Side.SELL, Product.D, 65, D("27000"), "FUT", on=date(2026, 12, 2))
    assert (buy.brokerage, buy.exchange_txn, buy.stamp_duty, buy.gst, buy.total) == (
        D("20.00"), D("30.36"), D("35.10"), D("9.70"), D("98.68"),
    )  # fmt: skip
    assert (sell.stt, sell.total) == (D("877.50"), D("941.08"))
    # the same sale before the Finance Act 2026: STT 0.02% = 351.00 -> 414.58
    old = SCHED.estimate(Side.SELL, Product.D, 65, D("27000"), "FUT", on=date(2026, 3, 31))
    assert old.total == D("414.58")


def test_futures_get_the_futures_schedule_not_the_options_one():
    assert charge_segment("NSE_FO", "FUT") == "FUT"
    assert charge_segment("NSE_FO", "CE") == "FO"
    assert charge_segment("NSE_FO", "PE") == "FO"
    assert charge_segment("NSE_EQ", "EQ") == "EQ"
    assert charge_segment("FO") == "FO"


def test_one_brokerage_per_order_when_it_fills_in_two_parts():
    # intraday BUY 400 @ 100 = 40000 as one order:
    #   brokerage min(0.1% = 40, 20) = 20; txn 1.188 -> 1.19; SEBI 0.04; IPFT 0.04
    #   GST 18% x 21.27 = 3.8286 -> 3.83; stamp 0.003% = 1.20; total 26.30
    # filled 250 then 150: the first fill is an order of 25000 so far:
    #   brokerage 20 (cap); txn 0.7425 -> 0.74; SEBI 0.025 -> 0.03; IPFT 0.03
    #   GST 18% x 20.80 = 3.744 -> 3.74; stamp 0.75; total 25.29
    # the second fill adds 26.30 - 25.29 = 1.01 (no second brokerage)
    # per fill (the old way) the second fill alone would have paid 18.73 (brokerage 15.00):
    # 15 + 0.45 + 0.02 + 0.02 + GST 18% x 15.49 = 2.79 + stamp 0.45 = 18.73 -> 44.02 for the order
    whole = SCHED.estimate(Side.BUY, Product.I, 400, D("100"))
    first = SCHED.fill_charges(Side.BUY, Product.I, D(0), D("25000"))
    second = SCHED.fill_charges(Side.BUY, Product.I, D("25000"), D("15000"))
    assert whole.total == D("26.30")
    assert (first.total, second.total) == (D("25.29"), D("1.01"))
    assert first.brokerage + second.brokerage == D("20.00")
    assert first.total + second.total == whole.total
    old_second = SCHED.estimate(Side.BUY, Product.I, 150, D("100"))
    assert first.total + old_second.total == D("44.02")


def test_delivery_order_filled_250_plus_150_pays_the_contract_note_of_one_order():
    # delivery BUY 400 @ 800 = 320000: brokerage 20; STT 0.1% = 320.00; txn 9.504 -> 9.50
    # SEBI 0.32; IPFT 0.32; GST 18% x (20 + 9.50 + 0.32 + 0.32 = 30.14) = 5.4252 -> 5.43
    # stamp 0.015% = 48.00; total 403.57
    # fill 1 (250 = 200000): 20 + 200 + 5.94 + 0.20 + 0.20 + GST 18% x 26.34 = 4.74 + 30.00 = 261.08
    # fill 2 adds 403.57 - 261.08 = 142.49
    a = SCHED.fill_charges(Side.BUY, Product.D, D(0), D("200000"))
    b = SCHED.fill_charges(Side.BUY, Product.D, D("200000"), D("120000"))
    assert (a.total, b.total) == (D("261.08"), D("142.49"))
    assert b.brokerage == D("0.00") and a.total + b.total == D("403.57")


def test_exercise_stt_rate_is_dated():
    assert SCHED.segments_on(date(2026, 3, 31))["FO"].products[Product.D].stt_exercise_pct == D("0.125")
    assert SCHED.segments_on(date(2026, 4, 1))["FO"].products[Product.D].stt_exercise_pct == D("0.15")


def test_a_plain_number_is_a_rate_in_force_on_every_date():
    raw = _raw()
    raw["charges"]["segments"]["FO"]["products"]["D"] = dict(
        raw["charges"]["segments"]["FO"]["products"]["D"], stt_sell_pct=0.2
    )
    sched = parse_trading_config(raw).charges
    for day in (date(2020, 1, 1), date(2030, 1, 1)):
        assert sched.segments_on(day)["FO"].products[Product.D].stt_sell_pct == D("0.2")


@pytest.mark.parametrize(
    "value, key",
    [
        ([{"effective_from": "2026-04-01", "value": 0.15}, {"effective_from": "2024-10-01", "value": 0.1}],
         "charges.segments.FUT.products.D.stt_sell_pct"),
        ([{"effective_from": "2026-04-01"}], "charges.segments.FUT.products.D.stt_sell_pct[0]"),
        ([{"effective_from": "1 April", "value": 1}],
         "charges.segments.FUT.products.D.stt_sell_pct[0].effective_from"),
        ([], "charges.segments.FUT.products.D.stt_sell_pct"),
    ],
)  # fmt: skip
def test_dated_rate_errors_name_the_key(value, key):
    raw = _raw()
    raw["charges"]["segments"]["FUT"]["products"]["D"] = dict(
        raw["charges"]["segments"]["FUT"]["products"]["D"], stt_sell_pct=value
    )
    with pytest.raises(TradingConfigError) as ei:
        parse_trading_config(raw)
    assert ei.value.key == key


def test_gst_base_is_configurable():
    raw = _raw()
    raw["charges"]["gst_on"] = ["brokerage", "exchange_txn", "sebi_fee"]
    sched = parse_trading_config(raw).charges
    # 100000 intraday buy: GST 18% x (20 + 2.97 + 0.10) = 4.1526 -> 4.15 (IPFT left out)
    assert sched.estimate(Side.BUY, Product.I, 100, D("1000")).gst == D("4.15")
    raw["charges"]["gst_on"] = ["brokerage", "stamp"]
    with pytest.raises(TradingConfigError) as ei:
        parse_trading_config(raw)
    assert ei.value.key == "charges.gst_on"
