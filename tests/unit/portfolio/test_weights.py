"""Each weighting method against an independent computation (hand figures, closed forms, a grid)."""

from datetime import date
from itertools import product

import numpy as np
import pytest

from backend.domain.errors import ValidationFailed
from backend.domain.portfolio.weights import (
    compute_weights,
    covariance,
    custom_weights,
    inverse_volatility_weights,
    market_cap_weights,
    min_variance_weights,
    risk_contributions,
    risk_parity_weights,
    simple_returns,
)

SYMS = ("A", "B", "C")


def _closes_from_returns(returns: np.ndarray, start: float = 100.0) -> np.ndarray:
    return start * np.vstack([np.ones(returns.shape[1]), np.cumprod(1.0 + returns, axis=0)])


def _random_cov(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = rng.normal(size=(250, n)) * rng.uniform(0.005, 0.03, n)
    r[:, 1] += 0.7 * r[:, 0]  # some correlation
    return np.cov(r, rowvar=False)


def test_equal_weights():
    w = compute_weights("equal", SYMS, np.ones((1, 3)), date(2024, 1, 1))
    assert w.tolist() == pytest.approx([1 / 3] * 3)


def test_custom_weights_are_normalised_and_checked():
    assert custom_weights(SYMS, {"A": 2, "B": 1, "C": 1}).tolist() == [0.5, 0.25, 0.25]
    with pytest.raises(ValidationFailed, match="no weight given for C"):
        custom_weights(SYMS, {"A": 1, "B": 1})
    with pytest.raises(ValidationFailed, match="outside the universe: D"):
        custom_weights(SYMS, {"A": 1, "B": 1, "C": 1, "D": 1})
    with pytest.raises(ValidationFailed, match="long-only"):
        custom_weights(SYMS, {"A": 1, "B": -1, "C": 1})


def test_covariance_convention_is_simple_returns_ddof_1():
    closes = np.array([[100.0, 50.0], [110.0, 50.0], [99.0, 55.0], [99.0, 44.0]])
    r = simple_returns(closes)
    assert r[:, 0].tolist() == pytest.approx([0.1, -0.1, 0.0])
    assert r[:, 1].tolist() == pytest.approx([0.0, 0.1, -0.2])
    cov = covariance(r)
    # by hand: means 0 and -1/30; var_A = (0.01 + 0.01 + 0) / 2
    assert cov[0, 0] == pytest.approx(0.01)
    mb = -1 / 30
    assert cov[1, 1] == pytest.approx(((0 - mb) ** 2 + (0.1 - mb) ** 2 + (-0.2 - mb) ** 2) / 2)
    assert cov[0, 1] == pytest.approx((0.1 * (0 - mb) + -0.1 * (0.1 - mb) + 0) / 2)


def test_inverse_volatility_hand_computed():
    # A alternates +-1%, B +-2%, C +-4%: sigmas 1:2:4, so weights 1 : 1/2 : 1/4 over 1.75
    sign = np.array([1, -1, 1, -1, 1, -1])
    r = np.column_stack([0.01 * sign, 0.02 * sign, -0.04 * sign])
    w = compute_weights("inverse_volatility", SYMS, _closes_from_returns(r), date(2024, 1, 1))
    assert w.tolist() == pytest.approx([1 / 1.75, 0.5 / 1.75, 0.25 / 1.75], abs=1e-12)


@pytest.mark.parametrize(("n", "seed"), [(2, 1), (5, 2), (10, 3), (50, 4)])
def test_risk_parity_has_equal_risk_contributions(n, seed):
    cov = _random_cov(n, seed)
    w = risk_parity_weights(cov)
    assert w.sum() == pytest.approx(1.0) and np.all(w > 0)
    rc = w * (cov @ w)  # independent of the solver: w_i (Sigma w)_i
    assert np.max(np.abs(rc / rc.sum() - 1.0 / n)) < 1e-6
    assert risk_contributions(w, cov) == pytest.approx(np.full(n, 1.0 / n), abs=1e-6)


def test_risk_parity_two_assets_is_inverse_volatility():
    # For two assets ERC is w_i proportional to 1/sigma_i whatever the correlation.
    cov = np.array([[0.04, 0.018], [0.018, 0.01]])
    w = risk_parity_weights(cov)
    assert w.tolist() == pytest.approx([0.1 / 0.3, 0.2 / 0.3], abs=1e-10)


def test_min_variance_matches_closed_form_when_long_only():
    # Low correlations: the unconstrained solution Sigma^-1 1 / 1' Sigma^-1 1 is already long-only.
    sd = np.array([0.01, 0.015, 0.02, 0.012])
    corr = np.full((4, 4), 0.1) + 0.9 * np.eye(4)
    cov = corr * np.outer(sd, sd)
    inv1 = np.linalg.solve(cov, np.ones(4))
    closed = inv1 / inv1.sum()
    assert np.all(closed > 0)
    w = min_variance_weights(cov)
    assert w.tolist() == pytest.approx(closed.tolist(), abs=1e-6)


def test_min_variance_against_a_brute_force_grid_with_a_binding_bound():
    cov = np.array([[0.0004, 0.0003, 0.0001], [0.0003, 0.0009, 0.0004], [0.0001, 0.0004, 0.0002]])
    inv1 = np.linalg.solve(cov, np.ones(3))
    assert np.any(inv1 / inv1.sum() < 0)  # the constraint binds: the closed form shorts
    step = 0.0025
    best, best_w = np.inf, None
    for i, j in product(range(401), repeat=2):
        a, b = i * step, j * step
        if a + b > 1 + 1e-12:
            continue
        g = np.array([a, b, 1 - a - b])
        v = g @ cov @ g
        if v < best:
            best, best_w = v, g
    w = min_variance_weights(cov)
    assert w.sum() == pytest.approx(1.0) and np.all(w >= 0)
    assert w @ cov @ w <= best + 1e-15  # at least as good as every grid point
    assert w.tolist() == pytest.approx(best_w.tolist(), abs=step)


def test_market_cap_weights_hand_computed_and_dated():
    shares = {
        "A": [(date(2020, 1, 1), 1000.0), (date(2024, 6, 1), 2000.0)],
        "B": [(date(2020, 1, 1), 500.0)],
    }
    prices = np.array([10.0, 40.0])
    w = market_cap_weights(("A", "B"), prices, shares, date(2024, 1, 2))
    assert w.tolist() == pytest.approx([10_000 / 30_000, 20_000 / 30_000])
    w = market_cap_weights(("A", "B"), prices, shares, date(2024, 6, 3))  # A issued shares
    assert w.tolist() == pytest.approx([0.5, 0.5])


def test_market_cap_refuses_naming_the_instrument():
    with pytest.raises(ValidationFailed, match="B: no shares-outstanding series") as e:
        market_cap_weights(
            ("A", "B"), np.array([1.0, 1.0]), {"A": [(date(2020, 1, 1), 1.0)]}, date(2024, 1, 1)
        )
    assert "shares_outstanding" in e.value.details["fields"]
    with pytest.raises(ValidationFailed, match="A: no shares-outstanding figure on or before 2019-01-01"):
        market_cap_weights(("A",), np.array([1.0]), {"A": [(date(2020, 1, 1), 1.0)]}, date(2019, 1, 1))


def test_risk_methods_refuse_a_flat_price_series_by_name():
    closes = np.column_stack([np.linspace(100, 110, 10), np.full(10, 50.0)])
    with pytest.raises(ValidationFailed, match="for B"):
        compute_weights("min_variance", ("A", "B"), closes, date(2024, 1, 1))


def test_inverse_vol_function_matches_sigma():
    cov = np.diag([0.0001, 0.0004])
    assert inverse_volatility_weights(cov).tolist() == pytest.approx([2 / 3, 1 / 3])
