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
            {S.OPEN, S.TRIGGER_PENDING, S.FILLED, S.PARTIALLY_FILLED, S.REJECTED, S.CANCELLED, S.OTHER}
        ),
        # live only: the row is committed before the broker call; the call's answer (or the look-up by
        # tag that replaces a lost answer) moves it on. ``unknown`` -> ``submitting`` is the one resend
        # a confirmed absence allows.
        S.SUBMITTING: frozenset(
            {S.PENDING, S.OPEN, S.TRIGGER_PENDING, S.PARTIALLY_FILLED, S.FILLED, S.REJECTED, S.CANCELLED}
            | {S.UNKNOWN, S.OTHER}
        ),
        S.UNKNOWN: frozenset(
            {S.SUBMITTING, S.PENDING, S.OPEN, S.TRIGGER_PENDING, S.PARTIALLY_FILLED, S.FILLED, S.REJECTED}
            | {S.CANCELLED, S.OTHER}
        ),
        S.TRIGGER_PENDING: frozenset({S.OPEN, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED, S.OTHER}),
        S.OPEN: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED, S.OTHER}),
        # cancelling/expiring a partial keeps its fills; the rest is dropped
        S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED, S.OTHER}),
        # a status text the broker added later: it may be working or final, so the next known status
        # the broker reports is taken, and any working order may be reported as ``other``
        S.OTHER: frozenset(
            {S.OTHER, S.PENDING, S.OPEN, S.TRIGGER_PENDING, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED}
            | {S.REJECTED, S.EXPIRED}
        ),
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
