"""Issue 17: strikes and money in the options analysis never print in exponent form."""

from decimal import Decimal

from backend.domain.strategies.options import StrategyLeg


def test_leg_strike_and_premium_are_plain_decimal_strings():
    leg = StrategyLeg(
        instrument="CE", side="BUY", quantity=75, strike=Decimal("3.145E+4"), premium=Decimal("1E+2")
    )
    out = leg.to_dict()
    assert out["strike"] == "31450"
    assert "E" not in out["premium"] and Decimal(out["premium"]) == 100
