"""Order lifecycle state machine: one transition table, nothing else decides legality."""

from __future__ import annotations

from types import MappingProxyType

from backend.domain.errors import Conflict
from backend.domain.orders.types import OrderStatus as S

TERMINAL_STATES: frozenset[S] = frozenset({S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED})

TRANSITIONS: MappingProxyType[S, frozenset[S]] = MappingProxyType(
    {
        # pending = accepted by us, not yet working (risk/broker ack outstanding)
        S.PENDING: frozenset(
            {S.OPEN, S.TRIGGER_PENDING, S.FILLED, S.PARTIALLY_FILLED, S.REJECTED, S.CANCELLED}
        ),
        S.TRIGGER_PENDING: frozenset({S.OPEN, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED}),
        S.OPEN: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED}),
        # cancelling/expiring a partial keeps its fills; the rest is dropped
        S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED}),
        S.FILLED: frozenset(),
        S.CANCELLED: frozenset(),
        S.REJECTED: frozenset(),
        S.EXPIRED: frozenset(),
    }
)


def can_transition(current: S, new: S) -> bool:
    return new in TRANSITIONS[S(current)]


def transition(current: S, new: S) -> S:
    """Return ``new`` if the move is legal, else raise Conflict(code="ILLEGAL_TRANSITION")."""
    current, new = S(current), S(new)
    if not can_transition(current, new):
        raise Conflict(
            f"illegal order transition {current} -> {new}",
            details={"from": str(current), "to": str(new)},
            code="ILLEGAL_TRANSITION",
        )
    return new


def is_terminal(status: S) -> bool:
    return S(status) in TERMINAL_STATES
