"""Risk limits and the rule for per-account overrides (non-admins may only tighten)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from backend.domain.errors import PermissionDenied, ValidationFailed

# How each field gets *tighter*: a smaller number, a larger number, a subset, or False.
_LOWER, _HIGHER, _SUBSET, _FALSE = "lower", "higher", "subset", "false"


def _f(default: Any, tighter: str, kind: type, **kw: Any) -> Any:
    return field(default=default, metadata={"tighter": tighter, "kind": kind}, **kw)


@dataclass(frozen=True, slots=True)
class RiskLimits:
    daily_loss_limit: Decimal = _f(Decimal("50000"), _LOWER, Decimal)  # rupees of realised loss per day
    max_orders_per_day: int = _f(200, _LOWER, int)
    max_order_value: Decimal = _f(Decimal("1000000"), _LOWER, Decimal)
    max_position_qty: int = _f(100000, _LOWER, int)
    max_position_value: Decimal = _f(Decimal("2000000"), _LOWER, Decimal)
    # The same two limits for F&O (segment FO). A contract's notional is its lot times the index:
    # one NIFTY lot is 65 x ~26,000 = ~17 lakh, above the cash-equity limits, so an F&O order is
    # judged against these instead (the margin it blocks is checked by buying power).
    fno_max_order_value: Decimal = _f(Decimal("5000000"), _LOWER, Decimal)
    fno_max_position_value: Decimal = _f(Decimal("10000000"), _LOWER, Decimal)
    max_position_pct_equity: Decimal = _f(Decimal("20"), _LOWER, Decimal)  # used by the sizer
    risk_per_trade_pct: Decimal = _f(Decimal("1"), _LOWER, Decimal)
    price_collar_pct: Decimal = _f(Decimal("5"), _LOWER, Decimal)  # fat-finger band around ltp
    max_consecutive_losses: int = _f(5, _LOWER, int)
    allowed_segments: frozenset[str] = _f(frozenset({"EQ"}), _SUBSET, frozenset)
    # None = every symbol; a set restricts trading to it
    allowed_symbols: frozenset[str] | None = _f(None, _SUBSET, frozenset)
    allow_short_selling: bool = _f(True, _FALSE, bool)
    # Cash blocked for an intraday short, as % of its notional (100 = fully cash-collateralised).
    short_margin_pct: Decimal = _f(Decimal("100"), _HIGHER, Decimal)

    def order_value_limit(self, segment: str) -> tuple[str, Decimal]:
        """(limit name, value) bounding one order's notional in ``segment``."""
        if segment == "FO":
            return "fno_max_order_value", self.fno_max_order_value
        return "max_order_value", self.max_order_value

    def position_value_limit(self, segment: str) -> tuple[str, Decimal]:
        """(limit name, value) bounding a position's notional in ``segment``."""
        if segment == "FO":
            return "fno_max_position_value", self.fno_max_position_value
        return "max_position_value", self.max_position_value

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = sorted(v) if isinstance(v, frozenset) else (str(v) if isinstance(v, Decimal) else v)
        return out


_FIELDS = {f.name: f for f in fields(RiskLimits)}


def coerce_limit(name: str, value: Any) -> Any:
    """Convert a YAML/JSON value to the field's type; ValidationFailed names the field."""
    if name not in _FIELDS:
        raise ValidationFailed(f"unknown risk limit {name!r}", details={name: "unknown risk limit"})
    kind = _FIELDS[name].metadata["kind"]
    try:
        if kind is frozenset:
            if value is None and name == "allowed_symbols":
                return None
            if isinstance(value, str) or not hasattr(value, "__iter__"):
                raise TypeError
            return frozenset(str(v).upper() for v in value)
        if kind is bool:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if kind is int:
            if isinstance(value, bool) or int(value) != value or int(value) < 0:
                raise TypeError
            return int(value)
        if isinstance(value, (bool, float)):
            # floats would smuggle binary rounding into money limits; accept str/int/Decimal only
            raise TypeError
        d = Decimal(str(value))
        if not d.is_finite() or d < 0:
            raise TypeError
        return d
    except (TypeError, ValueError, InvalidOperation):
        raise ValidationFailed(
            f"invalid value for risk limit {name!r}",
            details={name: f"expected {kind.__name__}, got {value!r}"},
        ) from None


def is_tighter_or_equal(name: str, current: Any, proposed: Any) -> bool:
    how = _FIELDS[name].metadata["tighter"]
    if how == _LOWER:
        return proposed <= current
    if how == _HIGHER:
        return proposed >= current
    if how == _FALSE:
        return (not proposed) or bool(current)
    # subset: None means "everything"
    if proposed is None:
        return current is None
    return current is None or proposed <= current


def merge_limits(defaults: RiskLimits, overrides: Mapping[str, Any], by_admin: bool = False) -> RiskLimits:
    """Apply per-account overrides. Non-admins may only tighten; loosening raises PermissionDenied."""
    changes = {name: coerce_limit(name, value) for name, value in overrides.items()}
    if not by_admin:
        for name, value in changes.items():
            if not is_tighter_or_equal(name, getattr(defaults, name), value):
                raise PermissionDenied(
                    f"only an admin may loosen risk limit {name!r}",
                    details={"field": name, "default": str(getattr(defaults, name)), "requested": str(value)},
                )
    return replace(defaults, **changes)


def limits_from_mapping(data: Mapping[str, Any]) -> RiskLimits:
    return replace(RiskLimits(), **{k: coerce_limit(k, v) for k, v in data.items()})
