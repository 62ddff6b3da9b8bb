from decimal import Decimal as D

import pytest
import yaml

from backend.domain.charges import (
    DEFAULT_CONFIG_PATH,
    ChargeBreakdown,
    TradingConfigError,
    estimate,
    load_trading_config,
    parse_trading_config,
)
from backend.domain.errors import ValidationFailed
from backend.domain.orders.types import Product, Side


def test_intraday_buy_contract_note():
    # 100 x 1000.00 = turnover 100000.00
    # brokerage  min(0.1% x 100000 = 100, cap 20)          = 20.00
    # STT        intraday buy side                         =  0.00
    # NSE txn    100000 x 0.00297%  = 2.97                 =  2.97
    # SEBI       100000 x 10 / 1e7  = 0.10                 =  0.10
    # IPFT       100000 x 10 / 1e7  = 0.10                 =  0.10
    # GST        18% x (20.00 + 2.97 + 0.10 + 0.10) = 4.1706 = 4.17
    # stamp      0.003% x 100000 = 3.00                    =  3.00
    # total                                                = 30.34
    c = estimate(Side.BUY, Product.I, 100, D("1000.00"))
    assert c == ChargeBreakdown(
        D("100000.00"), D("20.00"), D("0.00"), D("2.97"), D("0.10"), D("4.17"), D("3.00"), D("0.10")
    )
    assert c.total == D("30.34")


def test_intraday_sell_contract_note():
    # 100 x 1010.00 = 101000.00
    # brokerage  cap 20.00; STT 0.025% x 101000 = 25.25
    # NSE txn    101000 x 0.0000297 = 2.9997 -> 3.00 ; SEBI 0.101 -> 0.10 ; IPFT 0.101 -> 0.10
    # GST        18% x (20 + 3.00 + 0.10 + 0.10 = 23.20) = 4.176 -> 4.18 ; stamp (sell) 0
    # total      20 + 25.25 + 3.00 + 0.10 + 0.10 + 4.18 = 52.63
    c = estimate(Side.SELL, Product.I, 100, D("1010.00"))
    assert (c.brokerage, c.stt, c.exchange_txn, c.sebi_fee, c.ipft, c.gst, c.stamp_duty) == (
        D("20.00"), D("25.25"), D("3.00"), D("0.10"), D("0.10"), D("4.18"), D("0.00"),
    )  # fmt: skip
    assert c.total == D("52.63")


def test_intraday_small_order_percentage_brokerage_below_cap():
    # 10 x 100 = 1000: brokerage 0.1% = 1.00; txn 0.0297 -> 0.03; SEBI 0.001 -> 0.00; IPFT 0.00
    # GST 18% x 1.03 = 0.1854 -> 0.19; stamp 0.003% = 0.03; total 1.25
    c = estimate(Side.BUY, Product.I, 10, D("100"))
    assert (c.brokerage, c.exchange_txn, c.sebi_fee, c.ipft, c.gst, c.stamp_duty, c.total) == (
        D("1.00"), D("0.03"), D("0.00"), D("0.00"), D("0.19"), D("0.03"), D("1.25"),
    )  # fmt: skip


def test_delivery_buy_contract_note():
    # 50 x 2500.55 = 125027.50
    # brokerage flat 20.00; STT 0.1% = 125.0275 -> 125.03
    # NSE txn 125027.5 x 0.0000297 = 3.71331675 -> 3.71 ; SEBI 0.1250275 -> 0.13 ; IPFT 0.13
    # GST 18% x (20 + 3.71 + 0.13 + 0.13 = 23.97) = 4.3146 -> 4.31
    # stamp 0.015% x 125027.5 = 18.754125 -> 18.75
    # total 20 + 125.03 + 3.71 + 0.13 + 0.13 + 4.31 + 18.75 = 172.06
    c = estimate(Side.BUY, Product.D, 50, D("2500.55"))
    assert c.to_dict() == {
        "turnover": "125027.50", "brokerage": "20.00", "stt": "125.03", "exchange_txn": "3.71",
        "sebi_fee": "0.13", "gst": "4.31", "stamp_duty": "18.75", "ipft": "0.13", "dp_charge": "0.00",
        "total": "172.06",
    }  # fmt: skip


def test_delivery_sell_contract_note():
    # 50 x 2600 = 130000: brokerage 20; STT 0.1% = 130.00; txn 3.861 -> 3.86; SEBI 0.13; IPFT 0.13
    # DP charge 18.50 (first delivery sell of the scrip today)
    # GST 18% x (20 + 3.86 + 0.13 + 0.13 + 18.50 = 42.62) = 7.6716 -> 7.67; stamp 0 (sell)
    # total 20 + 130 + 3.86 + 0.13 + 0.13 + 18.50 + 7.67 = 180.29
    c = estimate(Side.SELL, Product.D, 50, D("2600"))
    assert (c.stt, c.exchange_txn, c.dp_charge, c.gst, c.stamp_duty, c.total) == (
        D("130.00"), D("3.86"), D("18.50"), D("7.67"), D("0.00"), D("180.29"),
    )  # fmt: skip
    # a second delivery sell of the scrip that day pays no DP charge:
    # GST 18% x 24.12 = 4.3416 -> 4.34; total 20 + 130 + 3.86 + 0.13 + 0.13 + 4.34 = 158.46
    assert estimate(Side.SELL, Product.D, 50, D("2600"), dp=False).total == D("158.46")


def test_unknown_segment_rejected():
    with pytest.raises(ValidationFailed):
        estimate(Side.BUY, Product.I, 1, D("10"), segment="CDS")


def _raw():
    with open(DEFAULT_CONFIG_PATH) as fh:
        return yaml.safe_load(fh)


def test_shipped_config_loads_typed():
    cfg = load_trading_config()
    assert cfg.charges.gst_pct == D("18")
    assert cfg.charges.segments["EQ"].exchange_txn_pct == D("0.00297")
    assert cfg.risk.max_orders_per_day == 200
    assert cfg.risk.allowed_segments == frozenset({"EQ", "FO"})
    assert cfg.charges.segments["FO"].exchange_txn_pct == D("0.03503")
    assert cfg.fills.market_collar_pct == D("2") and cfg.fills.partial_fills is False


def test_stt_rupee_rounding_option():
    raw = _raw()
    raw["charges"]["stt_rounding"] = "rupee"
    sched = parse_trading_config(raw).charges
    assert sched.estimate(Side.BUY, Product.D, 50, D("2500.55")).stt == D("125.00")


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda r: r["charges"].pop("gst_pct"), "charges.gst_pct"),
        (lambda r: r["charges"]["segments"]["EQ"].pop("exchange_txn_pct"),
         "charges.segments.EQ.exchange_txn_pct"),
        (lambda r: r["charges"]["segments"]["EQ"]["products"]["I"].update(stt_sell_pct="abc"),
         "charges.segments.EQ.products.I.stt_sell_pct"),
        (lambda r: r["charges"]["segments"]["EQ"]["products"]["D"].update(brokerage_mode="weird"),
         "charges.segments.EQ.products.D.brokerage_mode"),
        (lambda r: r["charges"]["segments"]["EQ"]["products"].update(X={}), "charges.segments.EQ.products.X"),
        (lambda r: r["risk"].update(max_orders_per_day="many"), "risk.max_orders_per_day"),
        (lambda r: r["risk"].update(bogus=1), "risk.bogus"),
        (lambda r: r["fills"].update(max_volume_fraction=2), "fills.max_volume_fraction"),
        (lambda r: r["fills"].update(partial_fills="yes"), "fills.partial_fills"),
    ],
)  # fmt: skip
def test_config_errors_name_the_key(mutate, key):
    raw = _raw()
    mutate(raw)
    with pytest.raises(TradingConfigError) as ei:
        parse_trading_config(raw)
    assert ei.value.key == key
    assert key in str(ei.value)
