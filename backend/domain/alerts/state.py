"""Per-rule evaluation state, persisted by the service layer so a restart never refires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any


def _encode(value: Any) -> Any:
    # Tagged so from_dict gives back the same type (Decimal stays Decimal).
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"decimal"}:
        return Decimal(value["decimal"])
    return value


@dataclass(slots=True)
class RuleState:
    """``armed``: the next time the condition is true the rule fires (edge-triggered).

    ``done``: a one-shot rule that has fired; it is never evaluated again.
    ``last_value``: the observed value (price, % change, P&L, ...) at the last firing.
    ``suppressed_count``: crossings swallowed because the cooldown had not elapsed.
    """

    armed: bool = True
    last_fired_at: datetime | None = None
    fire_count: int = 0
    last_value: Any = None
    done: bool = False
    suppressed_count: int = 0

    def to_dict(self) -> dict:
        return {
            "armed": self.armed,
            "last_fired_at": self.last_fired_at.isoformat() if self.last_fired_at else None,
            "fire_count": self.fire_count,
            "last_value": _encode(self.last_value),
            "done": self.done,
            "suppressed_count": self.suppressed_count,
        }

    @classmethod
    def from_dict(cls, data: dict) -> RuleState:
        lfa = data.get("last_fired_at")
        return cls(
            armed=bool(data.get("armed", True)),
            last_fired_at=datetime.fromisoformat(lfa) if lfa else None,
            fire_count=int(data.get("fire_count", 0)),
            last_value=_decode(data.get("last_value")),
            done=bool(data.get("done", False)),
            suppressed_count=int(data.get("suppressed_count", 0)),
        )
