"""Portfolio construction: weighting methods, rebalancing with charges, index values and
investment simulations (pure: numpy and scipy, no Flask)."""

from backend.domain.portfolio.index import (
    DRIFT_MODES,
    RULES,
    Holdings,
    IndexRun,
    IndexSpec,
    Rebalance,
    align_rates,
    drift_exceeded,
    index_levels,
    rebalance_charges,
    run_index,
)
from backend.domain.portfolio.weights import (
    DEFAULT_LOOKBACK,
    METHODS,
    RISK_METHODS,
    compute_weights,
    covariance,
    risk_contributions,
    simple_returns,
)

__all__ = [
    "DEFAULT_LOOKBACK",
    "DRIFT_MODES",
    "METHODS",
    "RISK_METHODS",
    "RULES",
    "Holdings",
    "IndexRun",
    "IndexSpec",
    "Rebalance",
    "align_rates",
    "compute_weights",
    "covariance",
    "drift_exceeded",
    "index_levels",
    "rebalance_charges",
    "risk_contributions",
    "run_index",
    "simple_returns",
]
