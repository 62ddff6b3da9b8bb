"""Black–Scholes–Merton prices, greeks and implied volatility against reference values."""

import math
from statistics import NormalDist

import numpy as np
import pytest

from backend.domain.errors import ValidationFailed
from backend.domain.options import pricing
from backend.domain.options.pricing import (
    bs_greeks,
    bs_greeks_array,
    bs_price,
    bs_price_array,
    implied_vol,
    implied_vol_array,
)

_N = NormalDist()


def ref_price(s, k, t, r, v, typ, q=0.0):
    """Independent reference: statistics.NormalDist instead of the module's erf-based CDF."""
    d1 = (math.log(s / k) + (r - q + v * v / 2) * t) / (v * math.sqrt(t))
    d2 = d1 - v * math.sqrt(t)
    if typ == "CE":
        return s * math.exp(-q * t) * _N.cdf(d1) - k * math.exp(-r * t) * _N.cdf(d2)
    return k * math.exp(-r * t) * _N.cdf(-d2) - s * math.exp(-q * t) * _N.cdf(-d1)


# Hull, Options Futures and Other Derivatives, Example 15.6: S=42, K=40, r=10%, sigma=20%, T=0.5.
HULL = dict(spot=42, strike=40, t_years=0.5, rate=0.1, vol=0.2)


def test_hull_example_call_and_put_match_textbook_and_reference():
    call = bs_price(option_type="CE", **HULL)
    put = bs_price(option_type="PE", **HULL)
    assert call == pytest.approx(4.7594, abs=5e-5)
    assert put == pytest.approx(0.8086, abs=5e-5)
    assert call == pytest.approx(ref_price(42, 40, 0.5, 0.1, 0.2, "CE"), abs=1e-10)
    assert put == pytest.approx(ref_price(42, 40, 0.5, 0.1, 0.2, "PE"), abs=1e-10)
    # More precise value of the textbook example.
    assert call == pytest.approx(4.759422392871532, abs=1e-9)
    assert put == pytest.approx(0.808599372900092, abs=1e-9)


@pytest.mark.parametrize(
    "s,k,t,r,v,q",
    [(42, 40, 0.5, 0.1, 0.2, 0.0), (100, 120, 0.25, 0.05, 0.35, 0.02), (930, 900, 2 / 12, 0.08, 0.2, 0.03)],
)
def test_put_call_parity_with_dividend_yield(s, k, t, r, v, q):
    c = bs_price(s, k, t, r, v, "CE", q)
    p = bs_price(s, k, t, r, v, "PE", q)
    assert c - p == pytest.approx(s * math.exp(-q * t) - k * math.exp(-r * t), abs=1e-9)
    assert c == pytest.approx(ref_price(s, k, t, r, v, "CE", q), abs=1e-9)
    assert p == pytest.approx(ref_price(s, k, t, r, v, "PE", q), abs=1e-9)


def test_hull_index_option_with_dividend_yield():
    # Hull Example 17.1: European call on an index, S=930, K=900, r=8%, q=3%, sigma=20%, T=2 months.
    assert bs_price(930, 900, 2 / 12, 0.08, 0.2, "CE", q=0.03) == pytest.approx(51.83, abs=0.005)


def test_hull_greeks_example_with_stated_units():
    # Hull Ch. 19: S=49, K=50, r=5%, sigma=20%, T=20 weeks. delta 0.522, gamma 0.066,
    # theta -4.31/yr, vega 12.1 per unit vol, rho 8.91 per unit rate.
    g = bs_greeks(49, 50, 20 / 52, 0.05, 0.2, "CE")
    assert g.delta == pytest.approx(0.522, abs=5e-4)
    assert g.gamma == pytest.approx(0.066, abs=5e-4)
    assert g.theta * 365 == pytest.approx(-4.31, abs=5e-3)  # per day convention
    assert g.vega * 100 == pytest.approx(12.1, abs=5e-2)  # per vol point convention
    assert g.rho * 100 == pytest.approx(8.91, abs=5e-3)  # per 1 % convention


@pytest.mark.parametrize("typ", ["CE", "PE"])
@pytest.mark.parametrize("s,k,t,r,v,q", [(49, 50, 20 / 52, 0.05, 0.2, 0.0), (100, 90, 0.1, 0.07, 0.4, 0.015)])
def test_greeks_match_finite_differences(typ, s, k, t, r, v, q):
    g = bs_greeks(s, k, t, r, v, typ, q)

    def px(**kw):
        a = dict(spot=s, strike=k, t_years=t, rate=r, vol=v, q=q) | kw
        return ref_price(a["spot"], a["strike"], a["t_years"], a["rate"], a["vol"], typ, a["q"])

    h = 1e-4
    assert g.delta == pytest.approx((px(spot=s + h) - px(spot=s - h)) / (2 * h), abs=1e-6)
    hs = 1e-2
    assert g.gamma == pytest.approx((px(spot=s + hs) - 2 * px() + px(spot=s - hs)) / hs**2, abs=1e-6)
    assert g.vega == pytest.approx((px(vol=v + h) - px(vol=v - h)) / (2 * h) / 100, abs=1e-6)
    assert g.theta == pytest.approx(-(px(t_years=t + h) - px(t_years=t - h)) / (2 * h) / 365, abs=1e-6)
    assert g.rho == pytest.approx((px(rate=r + h) - px(rate=r - h)) / (2 * h) / 100, abs=1e-6)


def test_put_delta_is_call_delta_minus_discount_factor():
    c = bs_greeks(100, 105, 0.3, 0.06, 0.25, "CE", 0.02)
    p = bs_greeks(100, 105, 0.3, 0.06, 0.25, "PE", 0.02)
    assert c.delta - p.delta == pytest.approx(math.exp(-0.02 * 0.3), abs=1e-12)
    assert c.gamma == pytest.approx(p.gamma, abs=1e-15)
    assert c.vega == pytest.approx(p.vega, abs=1e-15)


def test_expired_and_zero_vol_are_intrinsic():
    assert bs_price(110, 100, 0, 0.05, 0.2, "CE") == 10
    assert bs_price(110, 100, 0, 0.05, 0.2, "PE") == 0
    assert bs_greeks(110, 100, 0, 0.05, 0.2, "CE").delta == 1.0
    assert bs_greeks(90, 100, 0, 0.05, 0.2, "PE").delta == -1.0
    # Zero vol: discounted forward intrinsic S - K e^{-rT}.
    assert bs_price(100, 100, 1.0, 0.05, 0.0, "CE") == pytest.approx(100 - 100 * math.exp(-0.05), abs=1e-12)
    assert bs_price(100, 100, 1.0, 0.05, 0.0, "PE") == 0.0


def test_invalid_inputs_raise_domain_errors():
    with pytest.raises(ValidationFailed):
        bs_price(100, 100, 1, 0.05, 0.2, "XX")
    with pytest.raises(ValidationFailed):
        bs_price(-1, 100, 1, 0.05, 0.2, "CE")
    with pytest.raises(ValidationFailed):
        bs_price(100, 100, 1, 0.05, -0.2, "CE")


def test_vectorised_matches_scalar():
    strikes = np.array([80.0, 95, 100, 105, 130])
    types = np.array(["CE", "PE", "CE", "PE", "CE"])
    vols = np.array([0.3, 0.25, 0.2, 0.22, 0.4])
    prices = bs_price_array(100, strikes, 0.2, 0.065, vols, types, 0.01)
    greeks = bs_greeks_array(100, strikes, 0.2, 0.065, vols, types, 0.01)
    for i, (k, typ, v) in enumerate(zip(strikes, types, vols, strict=True)):
        assert prices[i] == pytest.approx(bs_price(100, k, 0.2, 0.065, v, typ, 0.01), abs=1e-12)
        g = bs_greeks(100, k, 0.2, 0.065, v, typ, 0.01)
        for name in ("delta", "gamma", "theta", "vega", "rho"):
            assert getattr(greeks, name)[i] == pytest.approx(getattr(g, name), abs=1e-12)


def test_vectorised_handles_expired_elements():
    prices = bs_price_array([110, 110], 100, [0.0, 0.5], 0.05, 0.2, "CE")
    assert prices[0] == 10.0
    assert prices[1] == pytest.approx(bs_price(110, 100, 0.5, 0.05, 0.2, "CE"), abs=1e-12)
    g = bs_greeks_array([110, 100], 100, 0.0, 0.05, 0.2, "CE")
    assert g.delta.tolist() == [1.0, 0.5]
    assert g.gamma.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("use_scipy", [True, False])
@pytest.mark.parametrize("typ", ["CE", "PE"])
@pytest.mark.parametrize("k,v", [(40, 0.2), (30, 0.6), (55, 0.15), (42, 1.5), (50, 0.05)])
def test_implied_vol_round_trip_brent_and_newton(monkeypatch, use_scipy, typ, k, v):
    if not use_scipy:
        monkeypatch.setattr(pricing, "_brentq", None)
    price = bs_price(42, k, 0.5, 0.1, v, typ, 0.01)
    assert implied_vol(price, 42, k, 0.5, 0.1, typ, 0.01) == pytest.approx(v, abs=1e-6)


def test_implied_vol_of_hull_example():
    assert implied_vol(4.759422392871532, 42, 40, 0.5, 0.1, "CE") == pytest.approx(0.2, abs=1e-9)


def test_implied_vol_rejects_prices_outside_arbitrage_bounds():
    with pytest.raises(ValidationFailed):
        implied_vol(1.0, 42, 40, 0.5, 0.1, "CE")  # below intrinsic S - K e^{-rT}
    with pytest.raises(ValidationFailed):
        implied_vol(43.0, 42, 40, 0.5, 0.1, "CE")  # above S
    with pytest.raises(ValidationFailed):
        implied_vol(1.0, 42, 40, 0.0, 0.1, "CE")  # expired


def test_implied_vol_array_round_trip_and_nan_for_bad_quotes():
    strikes = np.linspace(70, 140, 15)
    vols = np.linspace(0.15, 0.9, 15)  # deep ITM at lower vol has no identifiable time value
    for typ in ("CE", "PE"):
        prices = bs_price_array(100, strikes, 0.25, 0.065, vols, typ)
        iv = implied_vol_array(prices, 100, strikes, 0.25, 0.065, typ)
        np.testing.assert_allclose(iv, vols, atol=1e-7)
    bad = implied_vol_array([0.5, 200.0, 5.0], 100, [80, 100, 100], [0.25, 0.25, 0.0], 0.065, "CE")
    assert np.isnan(bad).all()


def test_vectorised_without_scipy_uses_erf_fallback(monkeypatch):
    expected = bs_price_array(100, [90.0, 110.0], 0.3, 0.05, 0.25, ["CE", "PE"])
    monkeypatch.setattr(pricing, "_ndtr", None)
    fallback = bs_price_array(100, [90.0, 110.0], 0.3, 0.05, 0.25, ["CE", "PE"])
    np.testing.assert_allclose(fallback, expected, atol=1e-12)
    assert fallback[0] == pytest.approx(ref_price(100, 90, 0.3, 0.05, 0.25, "CE"), abs=1e-10)
