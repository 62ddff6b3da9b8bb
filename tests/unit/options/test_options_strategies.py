"""Options strategies: legs, payoff, max profit/loss, breakevens, greeks and margin by hand."""

import math
from datetime import date
from decimal import Decimal as D
from statistics import NormalDist

import numpy as np
import pytest

from backend.domain.errors import ValidationFailed
from backend.domain.options.chain import ChainRow, OptionLeg
from backend.domain.options.pricing import bs_price
from backend.domain.strategies import options as opt
from backend.domain.strategies.registry import StrategyFactory

SPOT = D("100")
LOT = 50
T = 30 / 365
R = 0.065
IV = 0.2

CALLS = {80: "20.5", 85: "16", 90: "11.5", 95: "7.5", 100: "4", 105: "2", 110: "1", 115: "0.5", 120: "0.25"}
PUTS = {80: "0.25", 85: "0.5", 90: "1", 95: "2", 100: "4", 105: "7.5", 110: "11.5", 115: "16", 120: "20.5"}
ROWS = [ChainRow(D(k), OptionLeg(D(CALLS[k]), iv=IV), OptionLeg(D(PUTS[k]), iv=IV)) for k in CALLS]

NAMES = [
    "iron_condor",
    "bull_call_spread",
    "bear_put_spread",
    "long_straddle",
    "short_strangle",
    "butterfly",
    "covered_call",
    "protective_put",
]


def analyse(name, **params):
    s = StrategyFactory.create(name, {"underlying": "NIFTY", "expiry": "2030-01-31", **params})
    return s.analyse(ROWS, SPOT, LOT, t_years=T, rate=R)


def legs_of(a):
    return [(leg.instrument, leg.strike, leg.side, leg.quantity, leg.premium) for leg in a.legs]


def ref_delta(k, typ):
    d1 = (math.log(100 / k) + (R + IV * IV / 2) * T) / (IV * math.sqrt(T))
    n = NormalDist().cdf(d1)
    return n if typ == "CE" else n - 1


# name -> (legs, net premium, max profit, max loss, breakevens, margin)
EXPECTED = {
    "iron_condor": (
        [("PE", D(80), "BUY", 50, D("0.25")), ("PE", D(90), "SELL", 50, D("1")),
         ("CE", D(110), "SELL", 50, D("1")), ("CE", D(120), "BUY", 50, D("0.25"))],
        D("-75.00"), D("75.00"), D("425.00"), [D("88.50"), D("111.50")], None,  # bounds below
    ),
    "bull_call_spread": (
        [("CE", D(100), "BUY", 50, D("4")), ("CE", D(110), "SELL", 50, D("1"))],
        D("150.00"), D("350.00"), D("150.00"), [D("103.00")], D("0.00"),  # debit: paid
    ),
    "bear_put_spread": (
        [("PE", D(100), "BUY", 50, D("4")), ("PE", D(90), "SELL", 50, D("1"))],
        D("150.00"), D("350.00"), D("150.00"), [D("97.00")], D("0.00"),
    ),
    "long_straddle": (
        [("CE", D(100), "BUY", 50, D("4")), ("PE", D(100), "BUY", 50, D("4"))],
        D("400.00"), None, D("400.00"), [D("92.00"), D("108.00")], D("0.00"),
    ),
    "short_strangle": (
        [("PE", D(90), "SELL", 50, D("1")), ("CE", D(110), "SELL", 50, D("1"))],
        D("-100.00"), D("100.00"), None, [D("88.00"), D("112.00")], D("500.00"),
        # short option minimum 3% x 100 x (50 + 50) = 300 (above scan - NOV) + exposure 2% x 100 x 100 = 200
    ),
    "butterfly": (
        [("CE", D(90), "BUY", 50, D("11.5")), ("CE", D(100), "SELL", 100, D("4")),
         ("CE", D(110), "BUY", 50, D("1"))],
        D("225.00"), D("275.00"), D("225.00"), [D("94.50"), D("105.50")], D("0.00"),
    ),
    "covered_call": (
        [("EQ", None, "BUY", 50, D("100")), ("CE", D(110), "SELL", 50, D("1"))],
        D("4950.00"), D("550.00"), D("4950.00"), [D("99.00")], None,  # bounds below
    ),
    "protective_put": (
        [("EQ", None, "BUY", 50, D("100")), ("PE", D(90), "BUY", 50, D("1"))],
        D("5050.00"), None, D("550.00"), [D("101.00")], D("0.00"),
    ),
}  # fmt: skip


def test_all_strategies_registered_as_options():
    assert set(NAMES) <= set(StrategyFactory.names("options"))
    for name in NAMES:
        cls = StrategyFactory.get(name)
        assert cls.kind == "options" and cls.description


@pytest.mark.parametrize("name", NAMES)
def test_legs_premium_profit_loss_breakevens_margin(name):
    legs, net, max_profit, max_loss, breakevens, margin = EXPECTED[name]
    a = analyse(name)
    assert legs_of(a) == legs
    assert a.net_premium == net
    assert a.max_profit == max_profit
    assert a.max_loss == max_loss
    assert a.breakevens == breakevens
    if margin is not None:
        assert a.margin == margin
    assert a.margin_method == "span_exposure"
    assert a.premium_type == ("credit" if net < 0 else "debit")
    for value in (a.net_premium, a.margin, *a.breakevens):
        assert value == value.quantize(D("0.01"))


@pytest.mark.parametrize("name", NAMES)
def test_expiry_curve_is_consistent_with_summary(name):
    a = analyse(name)
    prices = np.array(a.chart.prices)
    expiry = np.array(a.chart.expiry)
    assert len(prices) == len(expiry) == len(a.chart.today) >= 201
    assert np.all(np.diff(prices) > 0)
    # The grid contains the kinks, so bounded extremes are hit exactly on the grid.
    if a.max_profit is not None:
        assert expiry.max() == pytest.approx(float(a.max_profit), abs=1e-9)
    if a.max_loss is not None and name not in ("covered_call",):  # covered call worst case is at S=0
        assert -expiry.min() == pytest.approx(float(a.max_loss), abs=1e-9)
    # Expiry payoff is zero at each breakeven (evaluate by linear interpolation on the grid).
    for be in a.breakevens:
        assert np.interp(float(be), prices, expiry) == pytest.approx(0.0, abs=1e-6)


def test_expiry_payoff_values_of_iron_condor_by_hand():
    a = analyse("iron_condor")
    curve = dict(zip(a.chart.prices, a.chart.expiry, strict=True))
    assert curve[100.0] == pytest.approx(75.0)
    assert curve[90.0] == pytest.approx(75.0)
    assert curve[80.0] == pytest.approx(-425.0)
    assert curve[120.0] == pytest.approx(-425.0)
    assert a.chart.prices[0] == pytest.approx(64.0)  # 80 x (1 - 20 %)
    assert a.chart.prices[-1] == pytest.approx(144.0)  # 120 x (1 + 20 %)


def test_today_curve_is_black_scholes_value_minus_premium():
    a = analyse("bull_call_spread")
    i = a.chart.prices.index(100.0)
    expected = 50 * (bs_price(100, 100, T, R, IV, "CE") - 4) - 50 * (bs_price(100, 110, T, R, IV, "CE") - 1)
    assert a.chart.today[i] == pytest.approx(expected, abs=1e-9)


def test_today_equals_expiry_at_expiry():
    s = StrategyFactory.create("butterfly", {"underlying": "X", "expiry": "2030-01-31"})
    a = s.analyse(ROWS, SPOT, LOT, as_of=date(2030, 1, 31))
    assert a.t_years == 0.0
    np.testing.assert_allclose(a.chart.today, a.chart.expiry, atol=1e-9)


def test_position_greeks_hand_computed():
    straddle = analyse("long_straddle")
    dc = ref_delta(100, "CE")
    assert straddle.delta == pytest.approx(50 * (2 * dc - 1), abs=1e-6)
    assert straddle.gamma > 0 and straddle.vega > 0 and straddle.theta < 0

    cc = analyse("covered_call")
    assert cc.delta == pytest.approx(50 * (1 - ref_delta(110, "CE")), abs=1e-6)

    pp = analyse("protective_put")
    assert pp.delta == pytest.approx(50 * (1 + ref_delta(90, "PE")), abs=1e-6)

    strangle = analyse("short_strangle")
    assert strangle.delta == pytest.approx(-50 * (ref_delta(90, "PE") + ref_delta(110, "CE")), abs=1e-6)
    assert strangle.theta > 0 and strangle.vega < 0 and strangle.gamma < 0


@pytest.mark.parametrize("name", NAMES)
def test_position_greeks_match_finite_differences_of_today_value(name):
    a = analyse(name)

    def value(spot, t=T, vol_shift=0.0):
        total = 0.0
        for leg in a.legs:
            w = leg.sign * leg.quantity
            if leg.instrument == "EQ":
                total += w * spot
            else:
                total += w * bs_price(spot, leg.strike, t, R, leg.iv + vol_shift, leg.instrument)
        return total

    h = 1e-3
    assert a.delta == pytest.approx((value(100 + h) - value(100 - h)) / (2 * h), abs=1e-5)
    hs = 0.05
    assert a.gamma == pytest.approx((value(100 + hs) - 2 * value(100) + value(100 - hs)) / hs**2, abs=1e-4)
    assert a.vega == pytest.approx(
        (value(100, vol_shift=1e-4) - value(100, vol_shift=-1e-4)) / 2e-4 / 100, abs=1e-5
    )
    ht = 1e-5
    assert a.theta == pytest.approx(-(value(100, T + ht) - value(100, T - ht)) / (2 * ht) / 365, abs=1e-5)


def test_lots_scale_quantities_money_and_greeks():
    one = analyse("iron_condor")
    three = analyse("iron_condor", lots=3)
    assert [leg.quantity for leg in three.legs] == [150] * 4
    assert three.net_premium == 3 * one.net_premium
    assert three.max_loss == 3 * one.max_loss
    assert three.breakevens == one.breakevens
    assert three.delta == pytest.approx(3 * one.delta)


def test_offsets_and_explicit_strikes():
    a = analyse("short_strangle", offset=1)
    assert [leg.strike for leg in a.legs] == [D(95), D(105)]
    b = analyse("bull_call_spread", long_strike="95", short_strike="115")
    assert [leg.strike for leg in b.legs] == [D(95), D(115)]
    assert b.net_premium == D("350.00")  # (7.5 - 0.5) x 50
    assert b.max_profit == D("650.00")  # (20 - 7) x 50
    assert b.breakevens == [D("102.00")]


def test_hedged_and_covered_margins_stay_within_their_bounds():
    # iron condor as one basket: every short covered by a wing, so no minimum and no exposure; the
    # margin (the structure's worst liability in the scan) is at most the wing width 10 x 50
    condor = analyse("iron_condor")
    assert D("0") < condor.margin <= D("500.00")
    assert condor.margin_detail["short_option_minimum"] == "0.00"
    assert condor.margin_detail["exposure"] == "0.00"
    # covered call: the stock is cash-bought, not margined, so the written call pays at least the
    # minimum 3% x 100 x 50 = 150 plus exposure 2% x 100 x 50 = 100
    assert analyse("covered_call").margin >= D("250.00")


def test_margin_parameters_drive_the_naked_margin():
    from backend.domain.risk.margin import MarginParams

    s = StrategyFactory.create("short_strangle", {"underlying": "NIFTY", "expiry": "2030-01-31"})
    a = s.analyse(ROWS, SPOT, LOT, t_years=T, rate=R, margin=MarginParams(short_option_minimum_pct=D(5)))
    assert a.margin == D("700.00")  # 5% x 100 x 100 = 500 + exposure 2% x 100 x 100 = 200


def test_atm_rounds_to_nearest_listed_strike():
    s = StrategyFactory.create("long_straddle", {"underlying": "X", "expiry": "2030-01-31"})
    a = s.analyse(ROWS, D("103.1"), LOT, t_years=T)
    assert a.legs[0].strike == D(105)


@pytest.mark.parametrize(
    "name,params",
    [
        ("bull_call_spread", {"long_strike": "110", "short_strike": "100"}),  # inverted
        ("bull_call_spread", {"long_strike": "101"}),  # not listed
        ("iron_condor", {"short_offset": 3, "wing_width": 3}),  # beyond chain edge
    ],
)
def test_bad_strikes_raise_validation_failed(name, params):
    with pytest.raises(ValidationFailed):
        analyse(name, **params)


@pytest.mark.parametrize(
    "params",
    [{"lots": 0}, {"expiry": "not-a-date"}, {"short_offset": 0}, {"wing_width": 0}, {"underlying": ""}],
)
def test_params_validated_by_factory(params):
    with pytest.raises(ValidationFailed):
        StrategyFactory.create("iron_condor", {"underlying": "NIFTY", "expiry": "2030-01-31", **params})


def test_iv_implied_from_ltp_when_chain_has_none():
    price = round(bs_price(100, 100, T, R, 0.3, "CE"), 6)
    rows = [ChainRow(D(k), OptionLeg(D(str(price)) if k == 100 else D("1")), None) for k in (95, 100, 105)]
    s = StrategyFactory.create("bull_call_spread", {"underlying": "X", "expiry": "2030-01-31", "width": 1})
    legs = s.build_legs(rows, SPOT, LOT, t_years=T, rate=R)
    assert legs[0].iv == pytest.approx(0.3, abs=1e-5)


def test_missing_side_raises():
    rows = [ChainRow(D(k), OptionLeg(D("1"), iv=0.2), None) for k in (95, 100, 105)]
    s = StrategyFactory.create("long_straddle", {"underlying": "X", "expiry": "2030-01-31"})
    with pytest.raises(ValidationFailed):
        s.analyse(rows, SPOT, LOT, t_years=T)


def test_to_dict_marks_unlimited_and_serialises_money_as_strings():
    d = analyse("short_strangle").to_dict()
    assert d["max_loss"] == "unlimited"
    assert d["max_profit"] == "100.00"
    assert d["net_premium"] == "-100.00" and d["premium_type"] == "credit"
    assert d["breakevens"] == ["88.00", "112.00"]
    assert d["legs"][0] == {"instrument": "PE", "strike": "90", "side": "SELL", "quantity": 50,
                            "premium": "1.00", "iv": 0.2}  # fmt: skip
    assert d["strategy"] == "short_strangle" and d["expiry"] == "2030-01-31"


def test_analyse_legs_for_custom_structure_ratio_spread():
    # 1x2 call ratio spread: buy 100 CE @4, sell 2x 110 CE @1 -> debit 2/unit, unlimited loss above.
    legs = [
        opt.StrategyLeg("CE", D(100), "BUY", 50, D(4), 0.2),
        opt.StrategyLeg("CE", D(110), "SELL", 100, D(1), 0.2),
    ]
    a = opt.analyse_legs(legs, SPOT, T, R)
    assert a.net_premium == D("100.00")
    assert a.max_profit == D("400.00")  # at 110: 10 x 50 - 100
    assert a.max_loss is None
    assert a.breakevens == [D("102.00"), D("118.00")]
    # one short call uncovered: minimum 3% x 100 x 50 = 150 + exposure 2% x 100 x 50 = 100
    assert a.margin == D("250.00")


def test_strategy_leg_validation():
    with pytest.raises(ValidationFailed):
        opt.StrategyLeg("FUT", D(100), "BUY", 1, D(1))
    with pytest.raises(ValidationFailed):
        opt.StrategyLeg("CE", None, "BUY", 1, D(1))
    with pytest.raises(ValidationFailed):
        opt.StrategyLeg("CE", D(100), "HOLD", 1, D(1))
    with pytest.raises(ValidationFailed):
        opt.analyse_legs([], SPOT, T)


def test_catalog_lists_options_strategies_with_json_schemas():
    import json

    catalog = {c["name"]: c for c in StrategyFactory.catalog("options")}
    assert set(NAMES) <= set(catalog)
    schema = catalog["iron_condor"]["params_schema"]
    assert {"underlying", "expiry", "lots", "short_offset", "wing_width", "long_put_strike"} <= set(
        schema["properties"]
    )
    assert set(schema["required"]) == {"underlying", "expiry"}
    json.dumps(catalog)  # serialisable as is


def test_explicit_strike_must_be_positive():
    with pytest.raises(ValidationFailed):
        StrategyFactory.create("long_straddle", {"underlying": "X", "expiry": "2030-01-31", "strike": "-5"})


def test_time_to_expiry_from_date_and_datetime():
    from datetime import UTC, datetime

    s = StrategyFactory.create("long_straddle", {"underlying": "X", "expiry": "2030-01-31"})
    assert s.analyse(ROWS, SPOT, LOT, as_of=date(2030, 1, 1)).t_years == pytest.approx(30 / 365)
    # 04:00 UTC = 09:30 IST on expiry day: six hours left until the 15:30 IST close.
    a = s.analyse(ROWS, SPOT, LOT, as_of=datetime(2030, 1, 31, 4, 0, tzinfo=UTC))
    assert a.t_years == pytest.approx(6 / (365 * 24))
    assert a.theta < 0  # still has time value
    naive_ist = s.analyse(ROWS, SPOT, LOT, as_of=datetime(2030, 1, 31, 9, 30))
    assert naive_ist.t_years == pytest.approx(a.t_years)
    assert s.analyse(ROWS, SPOT, LOT, as_of=datetime(2030, 2, 1, tzinfo=UTC)).t_years == 0.0
