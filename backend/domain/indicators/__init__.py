"""Technical indicators on numpy arrays (pure numpy, no pandas).

Every function takes array-likes, returns ``float64`` arrays of the same length as the input,
with ``NaN`` during the warm-up bars where the indicator is not yet defined. NaN inputs are not
supported (callers pass clean price series).
"""

from backend.domain.indicators.core import (
    atr,
    bollinger,
    ema,
    linear_recursion,
    macd,
    rolling_max,
    rolling_min,
    rolling_std,
    rsi,
    shared_results,
    sma,
    true_range,
    vwap,
)

__all__ = [
    "atr",
    "bollinger",
    "ema",
    "linear_recursion",
    "macd",
    "rolling_max",
    "rolling_min",
    "rolling_std",
    "rsi",
    "shared_results",
    "sma",
    "true_range",
    "vwap",
]
