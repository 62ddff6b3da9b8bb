"""Trading circuit breaker: ACTIVE -> REDUCING -> HALTED, plus manual and global kill switches.

The state is a plain dataclass the service persists (``to_dict``/``from_dict``); every method of
``TradingCircuitBreaker`` is pure and returns a new state.

* ``max_consecutive_losses`` losing trades in a row -> REDUCING (only risk-reducing orders).
* realised loss for the day >= ``daily_loss_limit`` -> HALTED (nothing).
* a manual per-account kill switch or the global kill switch -> HALTED until released.
* a new trading day resets the counters and the automatic trips; kill switches persist.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

_SEVERITY = {"ACTIVE": 0, "REDUCING": 1, "HALTED": 2}


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


@dataclass(frozen=True, slots=True)
class BreakerState:
    trading_day: date | None = None
    tripped: TradingState = TradingState.ACTIVE  # automatic trip for the day
    trip_reason: str = ""
    consecutive_losses: int = 0
    day_realised_pnl: Decimal = Decimal(0)
    orders_today: int = 0
    kill_switch: bool = False
    kill_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["trading_day"] = self.trading_day.isoformat() if self.trading_day else None
        d["tripped"] = str(self.tripped)
        d["day_realised_pnl"] = str(self.day_realised_pnl)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BreakerState:
        return cls(
            trading_day=date.fromisoformat(d["trading_day"]) if d.get("trading_day") else None,
            tripped=TradingState(d.get("tripped", "ACTIVE")),
            trip_reason=d.get("trip_reason", ""),
            consecutive_losses=int(d.get("consecutive_losses", 0)),
            day_realised_pnl=Decimal(str(d.get("day_realised_pnl", "0"))),
            orders_today=int(d.get("orders_today", 0)),
            kill_switch=bool(d.get("kill_switch", False)),
            kill_reason=d.get("kill_reason", ""),
        )


def _worse(a: TradingState, b: TradingState) -> TradingState:
    return a if _SEVERITY[a] >= _SEVERITY[b] else b


def new_trip(before: dict[str, Any] | None, after: BreakerState) -> TradingState | None:
    """The automatic trip a write of ``after`` over the stored ``before`` starts (None: no new trip).

    A trip stored for an earlier day no longer applies (``roll_day``), so a trip today is new even
    if yesterday ended in the same state."""
    before = before or {}
    old = str(before.get("tripped", "ACTIVE"))
    day = after.trading_day.isoformat() if after.trading_day else None
    if before.get("trading_day") != day:
        old = "ACTIVE"
    return after.tripped if _SEVERITY[after.tripped] > _SEVERITY.get(old, 0) else None


class TradingCircuitBreaker:
    def __init__(self, max_consecutive_losses: int, daily_loss_limit: Decimal):
        self.max_consecutive_losses = max_consecutive_losses
        self.daily_loss_limit = daily_loss_limit

    def roll_day(self, st: BreakerState, day: date) -> BreakerState:
        if st.trading_day == day:
            return st
        return BreakerState(trading_day=day, kill_switch=st.kill_switch, kill_reason=st.kill_reason)

    def record_order(self, st: BreakerState, day: date) -> BreakerState:
        st = self.roll_day(st, day)
        return replace(st, orders_today=st.orders_today + 1)

    def record_trade(self, st: BreakerState, realised_pnl: Decimal, day: date) -> BreakerState:
        """Record a closed trade's realised P&L (net of charges if the caller wants charges to count)."""
        st = self.roll_day(st, day)
        losses = st.consecutive_losses + 1 if realised_pnl < 0 else 0
        day_pnl = st.day_realised_pnl + realised_pnl
        tripped, reason = st.tripped, st.trip_reason
        if losses >= self.max_consecutive_losses > 0 and _SEVERITY[tripped] < _SEVERITY["REDUCING"]:
            tripped, reason = TradingState.REDUCING, f"{losses} consecutive losing trades"
        if -day_pnl >= self.daily_loss_limit:
            tripped, reason = (
                TradingState.HALTED,
                f"daily loss {-day_pnl} reached limit {self.daily_loss_limit}",
            )
        return replace(
            st, consecutive_losses=losses, day_realised_pnl=day_pnl, tripped=tripped, trip_reason=reason
        )

    @staticmethod
    def kill(st: BreakerState, reason: str) -> BreakerState:
        return replace(st, kill_switch=True, kill_reason=reason)

    @staticmethod
    def release(st: BreakerState) -> BreakerState:
        """Release the manual kill switch (automatic trips stay until the day rolls)."""
        return replace(st, kill_switch=False, kill_reason="")

    @staticmethod
    def reset_trip(st: BreakerState) -> BreakerState:
        """Admin override of an automatic trip for the rest of the day."""
        return replace(st, tripped=TradingState.ACTIVE, trip_reason="", consecutive_losses=0)

    @staticmethod
    def effective_state(st: BreakerState, global_kill: bool = False) -> TradingState:
        if global_kill or st.kill_switch:
            return TradingState.HALTED
        return _worse(st.tripped, TradingState.ACTIVE)

    @classmethod
    def allows(cls, st: BreakerState, reduces_risk: bool, global_kill: bool = False) -> bool:
        state = cls.effective_state(st, global_kill)
        return state is TradingState.ACTIVE or reduces_risk  # an exit is always possible
