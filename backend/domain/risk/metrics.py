"""Portfolio risk metrics for an account. Formulas are delegated to ``backend.domain.metrics``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from numpy.typing import ArrayLike

from backend.domain import metrics as m


@dataclass(frozen=True, slots=True)
class Exposure:
    gross: Decimal  # sum |qty * ltp|
    net: Decimal  # sum qty * ltp (long minus short)
    long: Decimal
    short: Decimal  # positive number
    gross_pct_equity: Decimal | None
    net_pct_equity: Decimal | None


@dataclass(frozen=True, slots=True)
class RiskReport:
    var_hist_95: float
    var_hist_99: float
    var_param_95: float
    var_param_99: float
    sharpe: float
    sortino: float
    max_drawdown: float
    max_drawdown_duration: int

    def to_dict(self) -> dict[str, float | int | None]:
        out: dict[str, float | int | None] = {}
        for k in self.__slots__:
            v = getattr(self, k)
            out[k] = None if isinstance(v, float) and math.isnan(v) else v  # nan -> null in JSON
        return out


class RiskMetricsCalculator:
    """Account-level VaR / Sharpe / Sortino / drawdown from an equity series, exposure from positions."""

    def __init__(self, periods_per_year: float = 252, risk_free: float = 0.0):
        self.periods_per_year = periods_per_year
        self.risk_free = risk_free

    def historical_var(self, returns: ArrayLike, level: float = 0.95) -> float:
        return m.historical_var(returns, level)

    def parametric_var(self, returns: ArrayLike, level: float = 0.95) -> float:
        return m.parametric_var(returns, level)

    def sharpe(self, returns: ArrayLike) -> float:
        return m.sharpe_ratio(returns, self.periods_per_year, self.risk_free)

    def sortino(self, returns: ArrayLike) -> float:
        return m.sortino_ratio(returns, self.periods_per_year, self.risk_free)

    def max_drawdown(self, equity: ArrayLike) -> tuple[float, int]:
        return m.max_drawdown(equity)

    def report(self, equity: Sequence[Decimal | float]) -> RiskReport:
        eq = [float(x) for x in equity]  # metrics are statistics, float64 is fine here
        r = m.returns_from_equity(eq)
        mdd, dur = m.max_drawdown(eq)
        return RiskReport(
            var_hist_95=m.historical_var(r, 0.95),
            var_hist_99=m.historical_var(r, 0.99),
            var_param_95=m.parametric_var(r, 0.95),
            var_param_99=m.parametric_var(r, 0.99),
            sharpe=self.sharpe(r),
            sortino=self.sortino(r),
            max_drawdown=mdd,
            max_drawdown_duration=dur,
        )

    @staticmethod
    def exposure(
        positions: Mapping[str, int], ltp: Mapping[str, Decimal], equity: Decimal | None = None
    ) -> Exposure:
        long = sum((q * ltp[s] for s, q in positions.items() if q > 0), Decimal(0))
        short = sum((-q * ltp[s] for s, q in positions.items() if q < 0), Decimal(0))
        gross, net = long + short, long - short
        pct = (lambda x: x * 100 / equity) if equity else (lambda x: None)
        return Exposure(gross, net, long, short, pct(gross), pct(net))
