"""Position accounting by the average-cost method.

Why average cost: it is what Indian brokers (and Upstox's positions API) report as ``average_price``,
it needs no lot bookkeeping (FIFO needs every open lot), and it makes realised P&L independent of which
shares "were sold" within a symbol. Realised P&L here is gross of charges; charges are separate ledger
entries.

Exactness: the position keeps its signed *cost basis* ``C`` (sum of signed qty x price of the open
quantity) rather than a rounded average. Closing ``k`` of ``n`` shares removes ``C * k / n`` from the
basis, rounded to the paisa (a contract note's precision); the rounding residue stays in the basis and is
released exactly when the position goes flat. Hence, always and exactly::

    sum(cash flows of all fills) == realised_pnl - cost_basis     # cash flow = -signed_qty * price

and when ``qty == 0`` the realised P&L equals the net cash flow to the paisa.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Protocol

from backend.domain.orders.types import Side

PAISA = Decimal("0.01")
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Position:
    qty: int = 0  # signed: long > 0, short < 0
    cost_basis: Decimal = ZERO  # signed: positive for a long, negative for a short
    realised_pnl: Decimal = ZERO

    @property
    def avg_price(self) -> Decimal:
        """Average cost per share of the open quantity (0 when flat)."""
        return ZERO if self.qty == 0 else self.cost_basis / self.qty

    @property
    def side(self) -> Side | None:
        return None if self.qty == 0 else (Side.BUY if self.qty > 0 else Side.SELL)


@dataclass(frozen=True, slots=True)
class FillResult:
    position: Position
    realised: Decimal  # realised by this fill alone
    closed_qty: int
    opened_qty: int


def apply_fill(pos: Position, side: Side, qty: int, price: Decimal) -> FillResult:
    """Apply one fill. Handles adding, reducing, closing and flipping (long -> short and back)."""
    if qty <= 0:
        raise ValueError("fill quantity must be positive")
    signed = qty if Side(side) is Side.BUY else -qty
    n, cost, realised = pos.qty, pos.cost_basis, ZERO
    closed = 0
    if n != 0 and (n > 0) != (signed > 0):  # opposite direction: close first
        closed = min(qty, abs(n))
        removed = cost if closed == abs(n) else (cost * closed / abs(n)).quantize(PAISA, ROUND_HALF_EVEN)
        close_signed = closed if signed > 0 else -closed
        realised = -(close_signed * price) - removed
        cost -= removed
        n += close_signed
    opened = qty - closed
    if opened:
        open_signed = opened if signed > 0 else -opened
        cost += open_signed * price
        n += open_signed
    new = Position(qty=n, cost_basis=cost, realised_pnl=pos.realised_pnl + realised)
    return FillResult(new, realised, closed, opened)


def unrealised_pnl(pos: Position, ltp: Decimal) -> Decimal:
    """Mark-to-market P&L of the open quantity at ``ltp``."""
    return pos.qty * ltp - pos.cost_basis


class HasAmount(Protocol):
    amount: Decimal


class TradeLike(Protocol):
    side: Side
    quantity: int
    price: Decimal


def cash_from_ledger(entries: Iterable[HasAmount | Decimal]) -> Decimal:
    """Cash balance = exact sum of signed ledger amounts (credits positive, debits negative)."""
    total = ZERO
    for e in entries:
        total += e if isinstance(e, Decimal) else e.amount
    return total


def position_from_trades(trades: Iterable[TradeLike]) -> Position:
    """Rebuild a position from its trades in execution order (for invariant checks)."""
    pos = Position()
    for t in trades:
        pos = apply_fill(pos, t.side, t.quantity, t.price).position
    return pos


def net_cash_flow(trades: Iterable[TradeLike]) -> Decimal:
    """Sum of trade cash flows, gross of charges: sells positive, buys negative."""
    return sum((-(t.quantity if Side(t.side) is Side.BUY else -t.quantity) * t.price for t in trades), ZERO)
