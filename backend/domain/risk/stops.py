"""Per-position protective exits: stop-loss, take-profit and trailing stop, checked on every tick."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from typing import Any

from backend.domain.errors import ValidationFailed
from backend.domain.orders.types import OrderRequest, OrderType, Product, Side, Validity

_HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class ProtectedPosition:
    """Exit rules for one open position. ``qty`` is signed (long > 0). Prices are absolute levels."""

    symbol: str
    qty: int
    product: Product
    entry_price: Decimal
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    trailing_abs: Decimal | None = None  # trail by a fixed rupee distance ...
    trailing_pct: Decimal | None = None  # ... or by a percentage of the water mark
    water_mark: Decimal | None = None  # best price seen since entry: high for a long, low for a short

    def __post_init__(self) -> None:
        if self.qty == 0:
            raise ValidationFailed("cannot protect a flat position", details={"qty": "must be non-zero"})
        if self.trailing_abs is not None and self.trailing_pct is not None:
            raise ValidationFailed(
                "choose one trailing mode", details={"trailing_pct": "give trailing_abs or trailing_pct"}
            )
        long = self.qty > 0
        if self.stop_loss is not None and (
            self.stop_loss >= self.entry_price if long else self.stop_loss <= self.entry_price
        ):
            raise ValidationFailed(
                "stop-loss on the wrong side of entry",
                details={
                    "stop_loss": "must be below entry for a long"
                    if long
                    else "must be above entry for a short"
                },
            )
        if self.take_profit is not None and (
            self.take_profit <= self.entry_price if long else self.take_profit >= self.entry_price
        ):
            raise ValidationFailed(
                "take-profit on the wrong side of entry",
                details={
                    "take_profit": "must be above entry for a long"
                    if long
                    else "must be below entry for a short"
                },
            )
        if self.water_mark is None:
            object.__setattr__(self, "water_mark", self.entry_price)

    @property
    def trailing_level(self) -> Decimal | None:
        wm = self.water_mark
        assert wm is not None
        if self.trailing_abs is not None:
            return wm - self.trailing_abs if self.qty > 0 else wm + self.trailing_abs
        if self.trailing_pct is not None:
            f = self.trailing_pct / _HUNDRED
            return wm * (1 - f) if self.qty > 0 else wm * (1 + f)
        return None

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProtectedPosition:
        dec = ("entry_price", "stop_loss", "take_profit", "trailing_abs", "trailing_pct", "water_mark")
        kw = {k: (Decimal(v) if k in dec and v is not None else v) for k, v in d.items()}
        kw["product"] = Product(kw["product"])
        return cls(**kw)


def check_stops(pp: ProtectedPosition, ltp: Decimal) -> tuple[ProtectedPosition, OrderRequest | None]:
    """Update the water mark with ``ltp`` and return an exit order if a rule fires.

    Priority on a single tick: stop_loss, then trailing_stop, then take_profit (losses are cut first).
    """
    long = pp.qty > 0
    assert pp.water_mark is not None
    wm = max(pp.water_mark, ltp) if long else min(pp.water_mark, ltp)
    pp = replace(pp, water_mark=wm)

    def crossed_against(level: Decimal) -> bool:
        return ltp <= level if long else ltp >= level

    reason = None
    if pp.stop_loss is not None and crossed_against(pp.stop_loss):
        reason = "stop_loss"
    elif (lvl := pp.trailing_level) is not None and crossed_against(lvl):
        reason = "trailing_stop"
    elif pp.take_profit is not None and (ltp >= pp.take_profit if long else ltp <= pp.take_profit):
        reason = "take_profit"
    if reason is None:
        return pp, None
    exit_side = Side.SELL if long else Side.BUY
    order = OrderRequest(
        symbol=pp.symbol,
        side=exit_side,
        type=OrderType.MARKET,
        product=pp.product,
        quantity=abs(pp.qty),
        validity=Validity.DAY,
        tag=reason,
    )
    return pp, order


class StopLossManager:
    """Holds the protected positions of one account; the service persists ``to_dict()`` of each."""

    def __init__(self) -> None:
        self._positions: dict[str, ProtectedPosition] = {}

    def protect(self, pp: ProtectedPosition) -> None:
        self._positions[pp.symbol] = pp

    def remove(self, symbol: str) -> None:
        self._positions.pop(symbol, None)

    def get(self, symbol: str) -> ProtectedPosition | None:
        return self._positions.get(symbol)

    def positions(self) -> list[ProtectedPosition]:
        return list(self._positions.values())

    def on_tick(self, symbol: str, ltp: Decimal) -> list[OrderRequest]:
        """Returns exit orders; a fired position is removed so one exit is emitted only once."""
        pp = self._positions.get(symbol)
        if pp is None:
            return []
        pp, order = check_stops(pp, ltp)
        if order is None:
            self._positions[symbol] = pp
            return []
        del self._positions[symbol]
        return [order]
