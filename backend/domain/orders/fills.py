"""Paper fill model: pure functions deciding how a working order fills against one market update.

No I/O: ``evaluate`` returns a ``FillDecision`` and the service layer persists fills and status.

Rules (see docs/trading.md):

* MARKET: BUY at ``ask`` (SELL at ``bid``) worsened by ``slippage_bps``, then protected by a collar like
  Upstox ``market_protection``: a BUY never fills above ``ltp * (1 + collar)`` and a SELL never below
  ``ltp * (1 - collar)``. If the touch itself is beyond the collar nothing fills on this tick.
* LIMIT: BUY fills when ``ask <= limit`` at ``min(limit, ask)``; SELL when ``bid >= limit`` at
  ``max(limit, bid)`` (no slippage: a resting limit cannot be filled worse than its price).
* SL / SL-M: wait in ``trigger_pending`` until ``ltp`` crosses the trigger (BUY ``ltp >= trigger``,
  SELL ``ltp <= trigger``); then SL behaves as LIMIT and SL-M as MARKET, on the same tick.
* IOC: whatever does not fill on the first evaluated tick (after trigger, for stops) is cancelled.
* DAY: ``expire_at_session_close`` expires whatever is still working.
* Partial fills (optional): a tick can fill at most ``floor(volume * max_volume_fraction)`` shares,
  rounded down to the lot size.
* Rounding: every fill price is rounded to the tick size against the trader, BUY up and SELL down,
  except the collar bound, which is rounded inward (BUY down, SELL up) so it is never breached.
* An empty book side (bid/ask <= 0) falls back to ``ltp``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import NamedTuple, Protocol

from backend.domain.orders.state import TERMINAL_STATES
from backend.domain.orders.types import OrderRequest, OrderStatus, OrderType, Side, Validity

_BPS = Decimal(10_000)
_PCT = Decimal(100)


class MarketUpdate(Protocol):
    """Anything with these fields: ``market.types.Tick`` or ``market.types.Quote``."""

    ltp: Decimal
    bid: Decimal
    ask: Decimal
    volume: int


@dataclass(frozen=True, slots=True)
class FillConfig:
    slippage_bps: Decimal = Decimal("5")
    market_collar_pct: Decimal = Decimal("2")
    partial_fills: bool = False
    max_volume_fraction: Decimal = Decimal("0.25")


@dataclass(frozen=True, slots=True)
class OrderState:
    """The working order as the fill model sees it."""

    request: OrderRequest
    status: OrderStatus
    filled_quantity: int = 0
    tick_size: Decimal = Decimal("0.05")
    lot_size: int = 1

    @property
    def remaining(self) -> int:
        return self.request.quantity - self.filled_quantity


class Fill(NamedTuple):
    qty: int
    price: Decimal


@dataclass(frozen=True, slots=True)
class FillDecision:
    fills: list[Fill] = field(default_factory=list)
    new_status: OrderStatus = OrderStatus.OPEN
    reason: str = ""

    @property
    def filled_quantity(self) -> int:
        return sum(f.qty for f in self.fills)


def round_to_tick(price: Decimal, tick_size: Decimal, side: Side) -> Decimal:
    """Round against the trader: BUY up, SELL down, to a multiple of ``tick_size``."""
    rounding = ROUND_CEILING if side is Side.BUY else ROUND_FLOOR
    steps = (price / tick_size).to_integral_value(rounding=rounding)
    return (steps * tick_size).quantize(tick_size)


def _touch(update: MarketUpdate, side: Side) -> Decimal:
    px = update.ask if side is Side.BUY else update.bid
    return px if px and px > 0 else update.ltp


def market_fill_price(
    update: MarketUpdate, side: Side, cfg: FillConfig, tick_size: Decimal
) -> Decimal | None:
    """Slipped touch price capped by the collar; None when the touch is beyond the collar."""
    touch = _touch(update, side)
    collar = cfg.market_collar_pct / _PCT
    slip = cfg.slippage_bps / _BPS
    if side is Side.BUY:
        bound = round_to_tick(update.ltp * (1 + collar), tick_size, Side.SELL)  # inward = down
        if touch > bound:
            return None
        return min(round_to_tick(touch * (1 + slip), tick_size, Side.BUY), bound)
    bound = round_to_tick(update.ltp * (1 - collar), tick_size, Side.BUY)  # inward = up
    if touch < bound:
        return None
    return max(round_to_tick(touch * (1 - slip), tick_size, Side.SELL), bound)


def limit_fill_price(update: MarketUpdate, side: Side, limit: Decimal, tick_size: Decimal) -> Decimal | None:
    touch = _touch(update, side)
    if side is Side.BUY:
        return round_to_tick(min(limit, touch), tick_size, Side.BUY) if touch <= limit else None
    return round_to_tick(max(limit, touch), tick_size, Side.SELL) if touch >= limit else None


def is_triggered(side: Side, trigger: Decimal, ltp: Decimal) -> bool:
    return ltp >= trigger if side is Side.BUY else ltp <= trigger


def _fillable_qty(state: OrderState, update: MarketUpdate, cfg: FillConfig) -> int:
    if not cfg.partial_fills:
        return state.remaining
    cap = int((Decimal(max(update.volume, 0)) * cfg.max_volume_fraction).to_integral_value(ROUND_FLOOR))
    cap -= cap % state.lot_size
    return min(state.remaining, cap)


def evaluate(state: OrderState, update: MarketUpdate, cfg: FillConfig) -> FillDecision:
    """Decide fills and the next status for one order on one market update."""
    req = state.request
    if state.status in TERMINAL_STATES:
        return FillDecision([], state.status, "terminal")
    if state.remaining <= 0:
        return FillDecision([], OrderStatus.FILLED, "nothing_remaining")

    reason_prefix = ""
    if req.is_stop and state.status in (OrderStatus.TRIGGER_PENDING, OrderStatus.PENDING):
        assert req.trigger_price is not None
        if not is_triggered(req.side, req.trigger_price, update.ltp):
            return FillDecision([], OrderStatus.TRIGGER_PENDING, "awaiting_trigger")
        reason_prefix = "triggered;"

    if req.type in (OrderType.MARKET, OrderType.SL_M):
        price = market_fill_price(update, req.side, cfg, state.tick_size)
        no_fill_reason = "beyond_market_protection"
    else:
        assert req.price is not None
        price = limit_fill_price(update, req.side, req.price, state.tick_size)
        no_fill_reason = "limit_not_crossed"

    qty = _fillable_qty(state, update, cfg) if price is not None else 0
    fills = [Fill(qty, price)] if qty > 0 and price is not None else []
    now_filled = state.filled_quantity + qty

    if now_filled >= req.quantity:
        return FillDecision(fills, OrderStatus.FILLED, reason_prefix + "filled")
    if req.validity is Validity.IOC:
        why = "ioc_partial_rest_cancelled" if fills else f"ioc_unfilled_cancelled:{no_fill_reason}"
        return FillDecision(fills, OrderStatus.CANCELLED, reason_prefix + why)
    if now_filled > 0:
        why = "partial_fill" if fills else no_fill_reason
        return FillDecision(fills, OrderStatus.PARTIALLY_FILLED, reason_prefix + why)
    why = no_fill_reason if price is None else "no_volume"
    return FillDecision([], OrderStatus.OPEN, reason_prefix + why)


def expire_at_session_close(state: OrderState) -> FillDecision:
    """DAY orders that are still working at the close expire (fills already made stand)."""
    if state.status in TERMINAL_STATES:
        return FillDecision([], state.status, "terminal")
    return FillDecision([], OrderStatus.EXPIRED, "session_close")
