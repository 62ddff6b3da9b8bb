"""Trading strategies: registry, base classes and built-in signal strategies."""

from backend.domain.strategies import options, signals  # noqa: F401  (imports register the built-ins)
from backend.domain.strategies.base import SignalStrategy, Strategy
from backend.domain.strategies.registry import StrategyFactory, register

__all__ = ["SignalStrategy", "Strategy", "StrategyFactory", "register"]
