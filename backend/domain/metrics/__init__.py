"""Performance and risk metrics (pure numpy). See ``core`` for formulas."""

from backend.domain.metrics.core import (
    annual_volatility,
    cagr,
    calmar_ratio,
    drawdown_curve,
    expectancy,
    exposure,
    historical_var,
    max_drawdown,
    parametric_var,
    profit_factor,
    returns_from_equity,
    sharpe_ratio,
    sortino_ratio,
    sqn,
    total_return,
    win_rate,
)

__all__ = [
    "annual_volatility",
    "cagr",
    "calmar_ratio",
    "drawdown_curve",
    "expectancy",
    "exposure",
    "historical_var",
    "max_drawdown",
    "parametric_var",
    "profit_factor",
    "returns_from_equity",
    "sharpe_ratio",
    "sortino_ratio",
    "sqn",
    "total_return",
    "win_rate",
]
