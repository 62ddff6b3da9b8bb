"""Market data: value types, providers (simulated, CSV, Upstox), instruments and calendar."""

from backend.domain.market.calendar import MarketStatus, NseCalendar, market_status, session_close
from backend.domain.market.instruments import Instrument, InstrumentRegistry, default_registry
from backend.domain.market.provider import (
    INTERVALS,
    MAX_RANGE,
    MarketDataProvider,
    build_provider,
    chain_pcr,
    interval_delta,
    register_provider,
    validate_range,
)
from backend.domain.market.types import Candle, Quote, Tick

__all__ = [
    "INTERVALS",
    "MAX_RANGE",
    "Candle",
    "Instrument",
    "InstrumentRegistry",
    "MarketDataProvider",
    "MarketStatus",
    "NseCalendar",
    "Quote",
    "Tick",
    "build_provider",
    "chain_pcr",
    "default_registry",
    "interval_delta",
    "market_status",
    "register_provider",
    "session_close",
    "validate_range",
]
