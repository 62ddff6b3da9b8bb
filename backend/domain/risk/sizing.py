"""Position sizing: cap by % of equity and by rupee risk to the stop, rounded down to the lot size."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from backend.domain.errors import ValidationFailed

_HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class SizingSuggestion:
    quantity: int
    by_value: int  # largest lot multiple within max_position_pct of equity
    by_risk: int | None  # largest lot multiple risking at most risk_per_trade_pct of equity
    binding: str  # "value", "risk" or "none"
    explanation: str


def _floor_lots(x: Decimal, lot: int) -> int:
    shares = int(x.to_integral_value(ROUND_FLOOR))
    return max(shares - shares % lot, 0)


class PositionSizer:
    def __init__(self, max_position_pct: Decimal, risk_per_trade_pct: Decimal):
        self.max_position_pct = max_position_pct
        self.risk_per_trade_pct = risk_per_trade_pct

    def suggest(
        self,
        equity: Decimal,
        price: Decimal,
        lot_size: int = 1,
        stop_price: Decimal | None = None,
        existing_value: Decimal = Decimal(0),
    ) -> SizingSuggestion:
        if price <= 0:
            raise ValidationFailed("price must be positive", details={"price": str(price)})
        if equity <= 0:
            return SizingSuggestion(0, 0, None, "value", "no equity available")
        value_budget = max(equity * self.max_position_pct / _HUNDRED - existing_value, Decimal(0))
        by_value = _floor_lots(value_budget / price, lot_size)
        parts = [
            f"value cap {self.max_position_pct}% of equity {equity}"
            + f" = {equity * self.max_position_pct / _HUNDRED}"
            + (f" less existing {existing_value}" if existing_value else "")
            + f" / price {price} -> {by_value}"
        ]
        by_risk = None
        if stop_price is not None:
            distance = abs(price - stop_price)
            if distance == 0:
                raise ValidationFailed("stop equals entry price", details={"stop_price": str(stop_price)})
            risk_budget = equity * self.risk_per_trade_pct / _HUNDRED
            by_risk = _floor_lots(risk_budget / distance, lot_size)
            parts.append(
                f"risk {self.risk_per_trade_pct}% of equity = {risk_budget}"
                f" / stop distance {distance} -> {by_risk}"
            )
        qty = by_value if by_risk is None else min(by_value, by_risk)
        binding = "value" if by_risk is None or by_value <= by_risk else "risk"
        parts.append(f"rounded down to lot size {lot_size}: {qty} ({binding} limit binds)")
        return SizingSuggestion(qty, by_value, by_risk, binding, "; ".join(parts))
