"""F&O margin model (backend/domain/risk/margin.py) by hand. At t = 0 options are worth their
intrinsic value, so every scenario is arithmetic: NIFTY at 25000, one lot of 65, price scan 9.3%,
extreme moves 2 x 9.3% counted at 35%, short option minimum 3%, exposure 2% of notional."""

from decimal import Decimal as D

import pytest

from backend.domain.charges import TradingConfigError, load_trading_config
from backend.domain.orders.types import Instrument, OrderRequest, OrderType, Product, Side
from backend.domain.risk import AccountSnapshot, RiskCoordinator, RiskLimits
from backend.domain.risk.margin import MarginLeg, MarginParams, allocate, parse_margin, portfolio_margin

P = load_trading_config().margin
S = D("25000")


def m(*legs):
    return portfolio_margin(list(legs), S, 0.0, P)


def test_shipped_parameters():
    assert (P.price_scan_pct, P.volatility_scan, P.short_option_minimum_pct, P.exposure_pct) == (
        D("9.3"), D("4"), D("3"), D("2"),
    )  # fmt: skip


def test_short_future():
    # worst move 9.3% x 25000 x 65 = 151125.00 (extreme: 18.6% x 35% = 6.51%, smaller)
    # exposure 2% x 25000 x 65 = 32500.00 -> 183625.00
    r = m(MarginLeg("FUT", -1, 65, S))
    assert (r.scan_risk, r.span, r.exposure, r.total) == (
        D("151125.00"), D("151125.00"), D("32500.00"), D("183625.00"),
    )  # fmt: skip


def test_naked_atm_short_call():
    # +9.3%: the 25000 call is worth 2325 -> 2325 x 65 = 151125.00; minimum 3% x 25000 x 65 = 48750
    # span 151125.00 + exposure 32500.00 = 183625.00
    r = m(MarginLeg("CE", -1, 65, D("0"), D("25000")))
    assert (r.scan_risk, r.short_option_minimum, r.total) == (D("151125.00"), D("48750.00"), D("183625.00"))


def test_itm_short_call_adds_its_own_value():
    # strike 24000: worth 1000 now (net option value -65000); +9.3% adds 2325 x 65 = 151125
    # span 151125 + 65000 = 216125.00; + exposure 32500 = 248625.00
    r = m(MarginLeg("CE", -1, 65, D("1000"), D("24000")))
    assert (r.net_option_value, r.span, r.total) == (D("-65000.00"), D("216125.00"), D("248625.00"))


def test_deep_otm_short_put_never_under_the_short_option_minimum():
    # strike 20000: even -18.6% (20350) leaves it worthless: scan 0, so the minimum applies
    # 3% x 25000 x 65 = 48750.00 + exposure 32500.00 = 81250.00
    r = m(MarginLeg("PE", -1, 65, D("0"), D("20000")))
    assert (r.scan_risk, r.span, r.total) == (D("0.00"), D("48750.00"), D("81250.00"))


def test_hedged_put_spread_gets_its_defined_risk_margin():
    # sell 25000 PE, buy 24500 PE: at -9.3% the short is worth 2325, the long 1825: the loss is the
    # width 500 x 65 = 32500.00; every short covered: no minimum, no exposure
    legs = [MarginLeg("PE", -1, 65, D("0"), D("25000")), MarginLeg("PE", 1, 65, D("0"), D("24500"))]
    r = m(*legs)
    assert (r.span, r.short_option_minimum, r.exposure, r.total) == (
        D("32500.00"), D("0.00"), D("0.00"), D("32500.00"),
    )  # fmt: skip
    assert m(legs[0]).total == D("183625.00")  # the same short alone: 5.6 times more
    assert allocate(r.total, legs, S, 0.0, P) == [D("32500.00"), D("0.00")]


def test_long_option_needs_no_margin():
    assert m(MarginLeg("CE", 1, 65, D("300"), D("25000"))).total == D("0.00")


def test_coordinator_blocks_the_margin_for_option_writing_on_product_d():
    # the delivery-short rule is for cash equity: a short option on D (NRML) is margined
    coord = RiskCoordinator(load_trading_config().charges, margin=P)
    ins = Instrument("NIFTY 20000 PE", segment="FO", lot_size=65, instrument_type="PE",
                     underlying="NIFTY", strike=D("20000"))  # fmt: skip
    req = OrderRequest("NIFTY 20000 PE", Side.SELL, OrderType.LIMIT, Product.D, 65, price=D("0.05"))
    snap = AccountSnapshot(D("1000000"), underlying_prices={"NIFTY": S})
    fo = RiskLimits(allowed_segments=frozenset({"EQ", "FO"}))
    d = coord.evaluate(req, ins, D("0.05"), snap, fo)
    assert d.allowed, d.failed
    assert d.margins == [D("81250.00")]  # expired-style valuation (no expiry: t = 0), as above
    assert d.cash_required == D("81250.00") + d.estimated_charges
    # a cash-equity delivery short is still refused
    eq = Instrument("SBIN")
    d = coord.evaluate(
        OrderRequest("SBIN", Side.SELL, OrderType.LIMIT, Product.D, 10, price=D("800")), eq, D("800"),
        AccountSnapshot(D("1000000")), RiskLimits(),
    )  # fmt: skip
    assert [f.name for f in d.failed] == ["short_selling"]


def test_margin_config_errors_name_the_key():
    with pytest.raises(TradingConfigError) as ei:
        parse_margin({"exposure_pct": "lots"}, TradingConfigError)
    assert ei.value.key == "margin.exposure_pct"
    with pytest.raises(TradingConfigError) as ei:
        parse_margin({"span": 1}, TradingConfigError)
    assert ei.value.key == "margin.span"
    assert parse_margin(None, TradingConfigError) == MarginParams()
