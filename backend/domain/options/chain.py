"""Option chain value types, produced by market-data providers (simulated or broker).

Conventions: prices are ``Decimal`` rupees per unit of underlying; ``iv`` is annualised
volatility as a fraction (0.2 == 20 %), 0.0 when unknown; greeks follow
:mod:`backend.domain.options.pricing` (per unit, theta per calendar day, vega per vol point).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class OptionLeg:
    """Market data of one option (call or put) at one strike."""

    ltp: Decimal
    bid: Decimal = Decimal("0")
    ask: Decimal = Decimal("0")
    iv: float = 0.0
    delta: float = 0.0
    gamma: float = 0.0
    theta: float = 0.0
    vega: float = 0.0
    oi: int = 0
    volume: int = 0
    instrument_key: str = ""  # broker/provider key of this contract, "" when not known


@dataclass(frozen=True, slots=True)
class ChainRow:
    """One strike of a chain; ``call``/``put`` is ``None`` when that side is not listed."""

    strike: Decimal
    call: OptionLeg | None = None
    put: OptionLeg | None = None


@dataclass(frozen=True, slots=True)
class OptionChain:
    """A whole chain for one underlying and expiry (rows sorted by strike ascending)."""

    underlying: str
    expiry: date
    spot: Decimal
    rows: tuple[ChainRow, ...] = field(default_factory=tuple)
    lot_size: int = 1

    def __post_init__(self) -> None:
        # Frozen dataclass: sort via object.__setattr__ so callers may pass rows in any order.
        object.__setattr__(self, "rows", tuple(sorted(self.rows, key=lambda r: r.strike)))

    @property
    def strikes(self) -> list[Decimal]:
        return [r.strike for r in self.rows]

    def row(self, strike: Decimal) -> ChainRow | None:
        for r in self.rows:
            if r.strike == strike:
                return r
        return None
