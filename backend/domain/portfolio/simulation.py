"""An amount invested from a start date in a chosen currency, following an index's methodology.

The amount is converted into the instruments' currency at the start day's FX rate, invested in
whole shares (the rest stays as cash) with charges on every trade, and the portfolio's value is
converted back into the chosen currency at each day's rate. So the return includes the currency's
move: an unhedged investment, as a foreign investor would hold it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from backend.domain.charges import ChargeSchedule
from backend.domain.errors import ValidationFailed
from backend.domain.portfolio.index import IndexRun, IndexSpec, run_index


@dataclass
class SimulationResult:
    days: list[date]
    value: np.ndarray  # in the chosen currency, at each day's close
    invested: float  # the amount, in the chosen currency
    fx: np.ndarray  # instruments' currency per unit of the chosen currency, per day
    run: IndexRun  # the underlying run, in the instruments' currency (shares, cash, charges)

    @property
    def final_value(self) -> float:
        return float(self.value[-1])

    @property
    def total_return(self) -> float:
        return self.final_value / self.invested - 1.0


def simulate_investment(
    spec: IndexSpec,
    days: Sequence[date],
    closes: np.ndarray,
    start: int,
    amount: float,
    fx: np.ndarray,
    schedule: ChargeSchedule | None = None,
) -> SimulationResult:
    """``fx[t]``: units of the instruments' currency per unit of the chosen one on ``days[t]``
    (all ones when both are the same)."""
    if not amount > 0:
        raise ValidationFailed("amount must be > 0", {"fields": {"amount": ["Must be greater than 0."]}})
    fx = np.asarray(fx, dtype=np.float64)
    if fx.shape != (len(days),) or np.any(~np.isfinite(fx)) or np.any(fx <= 0):
        raise ValidationFailed(
            "FX rates must be positive, one per day", {"fields": {"currency": ["bad FX series"]}}
        )
    capital = amount * float(fx[start])
    run = run_index(spec, days, closes, start, capital, whole_shares=True, schedule=schedule)
    value = run.equity / fx[start:]
    return SimulationResult(run.days, value, float(amount), fx[start:], run)
