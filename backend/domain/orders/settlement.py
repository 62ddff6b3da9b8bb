"""Expiry settlement of index derivatives: pure arithmetic, no I/O.

NSE's rules (NSE "Settlement Price" schedule, nseindia.com/products/content/derivatives/equities/
settlement_price.htm; NSE Clearing F&O settlement):

* index options are European and **cash settled**: at expiry every in-the-money contract is
  exercised automatically at its intrinsic value against the final exercise settlement price, the
  closing price of the underlying index in the capital market segment on the last trading day; no
  index is delivered. Out-of-the-money contracts expire worthless;
* the writer of an exercised (in-the-money) option is assigned and pays the intrinsic value;
* index futures settle at the final settlement price, the same index close, in cash;
* STT on an exercised option is levied on the buyer, on the intrinsic value (settlement value), at
  the exercise rate (0.125%, 0.15% from 1 Apr 2026; config/trading.yaml ``stt_exercise_pct``).
  Writers pay no STT on assignment, and an expiring OTM option pays none (tradingqna.com "Settlement
  of index options on expiry"; punch.trade help "options contract not squared off on expiry").

Each settlement is a closing trade of the whole open quantity at a per-unit price: the intrinsic
value for options (0 when out of the money) and the final settlement price for futures. Booked
through the average-cost ledger like any fill, this gives exactly the broker's cash flows: a long
ITM call receives (S - K) x qty, a short one pays it, a long future receives S x qty against its
booked cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from backend.domain.charges import to_paise
from backend.domain.errors import ValidationFailed
from backend.domain.orders.types import Side

_HUNDRED = Decimal(100)
ZERO = Decimal("0.00")

EXERCISED = "exercised"  # long ITM option: receives the intrinsic value, pays exercise STT
ASSIGNED = "assigned"  # short ITM option: pays the intrinsic value
EXPIRED = "expired_worthless"  # OTM option, long or short: closes at 0
FUTURE_SETTLED = "future_settled"  # future: closes at the final settlement price


def intrinsic_value(kind: str, strike: Decimal, final_price: Decimal) -> Decimal:
    """Per-unit intrinsic value of a CE/PE at the final settlement price (never negative)."""
    if kind == "CE":
        return max(final_price - strike, ZERO)
    if kind == "PE":
        return max(strike - final_price, ZERO)
    raise ValidationFailed(f"intrinsic value needs an option, not {kind!r}", {"kind": kind})


@dataclass(frozen=True, slots=True)
class Settlement:
    """How one open position settles: a closing trade of ``quantity`` on ``side`` at ``price``."""

    outcome: str
    side: Side
    quantity: int
    price: Decimal  # per unit: intrinsic value (options) or final settlement price (futures)
    final_price: Decimal  # the underlying's close
    stt: Decimal  # exercise STT (long ITM options only)

    @property
    def value(self) -> Decimal:
        """Signed cash of the closing trade (credit > 0), before STT."""
        amount = self.price * self.quantity
        return amount if self.side is Side.SELL else -amount


def settle_position(
    kind: str,
    quantity: int,
    final_price: Decimal,
    strike: Decimal | None = None,
    exercise_stt_pct: Decimal = Decimal(0),
) -> Settlement:
    """Settlement of a position of signed ``quantity`` (long > 0) in a CE, PE or FUT contract."""
    if quantity == 0:
        raise ValidationFailed("nothing to settle: the position is flat", {"quantity": quantity})
    if final_price <= 0:
        raise ValidationFailed(
            "the final settlement price must be positive", {"final_price": str(final_price)}
        )
    side = Side.SELL if quantity > 0 else Side.BUY
    qty = abs(quantity)
    if kind == "FUT":
        return Settlement(FUTURE_SETTLED, side, qty, final_price, final_price, ZERO)
    if kind not in ("CE", "PE") or strike is None:
        raise ValidationFailed(f"cannot settle a {kind!r} contract", {"kind": kind})
    iv = intrinsic_value(kind, strike, final_price)
    if iv == 0:
        return Settlement(EXPIRED, side, qty, ZERO, final_price, ZERO)
    if quantity > 0:
        stt = to_paise(iv * qty * exercise_stt_pct / _HUNDRED)
        return Settlement(EXERCISED, side, qty, iv, final_price, stt)
    return Settlement(ASSIGNED, side, qty, iv, final_price, ZERO)
