"""Risk: limits, pre-trade coordinator, circuit breaker, stops, sizing and portfolio metrics."""

from backend.domain.risk.circuit_breaker import BreakerState, TradingCircuitBreaker, TradingState
from backend.domain.risk.coordinator import (
    DEFAULT_CHECKS,
    AccountSnapshot,
    CheckResult,
    RiskCoordinator,
    RiskDecision,
    WorkingOrder,
)
from backend.domain.risk.limits import RiskLimits, merge_limits
from backend.domain.risk.metrics import RiskMetricsCalculator
from backend.domain.risk.sizing import PositionSizer, SizingSuggestion
from backend.domain.risk.stops import ProtectedPosition, StopLossManager, check_stops

__all__ = [
    "DEFAULT_CHECKS",
    "AccountSnapshot",
    "BreakerState",
    "CheckResult",
    "PositionSizer",
    "ProtectedPosition",
    "RiskCoordinator",
    "RiskDecision",
    "RiskLimits",
    "RiskMetricsCalculator",
    "SizingSuggestion",
    "StopLossManager",
    "TradingCircuitBreaker",
    "TradingState",
    "WorkingOrder",
    "check_stops",
    "merge_limits",
]
