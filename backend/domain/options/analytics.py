"""Option chain analytics: put–call ratios, max pain, ATM strike and ATM IV."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from backend.domain.options.chain import ChainRow, OptionLeg


@dataclass(frozen=True, slots=True)
class ChainAnalytics:
    pcr_oi: float | None
    pcr_volume: float | None
    max_pain: Decimal | None
    atm_strike: Decimal | None
    atm_iv: float | None
    total_call_oi: int
    total_put_oi: int


def _sum(rows: Sequence[ChainRow], side: str, attr: str) -> int:
    total = 0
    for r in rows:
        leg: OptionLeg | None = getattr(r, side)
        if leg is not None:
            total += int(getattr(leg, attr))
    return total


def pcr_oi(rows: Sequence[ChainRow]) -> float | None:
    """Total put open interest / total call open interest; ``None`` when there is no call OI."""
    calls = _sum(rows, "call", "oi")
    return _sum(rows, "put", "oi") / calls if calls else None


def pcr_volume(rows: Sequence[ChainRow]) -> float | None:
    """Total put volume / total call volume; ``None`` when no call traded."""
    calls = _sum(rows, "call", "volume")
    return _sum(rows, "put", "volume") / calls if calls else None


def writer_payouts(rows: Sequence[ChainRow]) -> list[tuple[Decimal, Decimal]]:
    """Total intrinsic payout owed by option writers if the underlying settles at each strike.

    payout(S) = sum_i call_oi_i * max(S - K_i, 0) + put_oi_i * max(K_i - S, 0), in rupees per
    unit of OI (multiply by lot size if OI is quoted in lots).
    """
    out: list[tuple[Decimal, Decimal]] = []
    for settle in sorted({r.strike for r in rows}):
        total = Decimal("0")
        for r in rows:
            if r.call is not None and settle > r.strike:
                total += r.call.oi * (settle - r.strike)
            if r.put is not None and settle < r.strike:
                total += r.put.oi * (r.strike - settle)
        out.append((settle, total))
    return out


def max_pain(rows: Sequence[ChainRow]) -> Decimal | None:
    """Strike at which option writers pay out least at expiry (lowest such strike on ties).

    Only listed strikes are candidates: the payout is piecewise linear with kinks at strikes,
    so its minimum is always attained at one of them.
    """
    payouts = writer_payouts(rows)
    if not payouts:
        return None
    return min(payouts, key=lambda p: (p[1], p[0]))[0]


def atm_strike(rows: Sequence[ChainRow], spot: Decimal) -> Decimal | None:
    """Listed strike nearest to ``spot`` (the lower one when two are equally near)."""
    if not rows:
        return None
    spot = Decimal(spot)
    return min((r.strike for r in rows), key=lambda k: (abs(k - spot), k))


def atm_iv(rows: Sequence[ChainRow], spot: Decimal) -> float | None:
    """Mean of the call and put IVs (those > 0) at the ATM strike; ``None`` if neither is known."""
    strike = atm_strike(rows, spot)
    if strike is None:
        return None
    ivs = [
        leg.iv
        for r in rows
        if r.strike == strike
        for leg in (r.call, r.put)
        if leg is not None and leg.iv and leg.iv > 0
    ]
    return sum(ivs) / len(ivs) if ivs else None


def analyse_chain(rows: Sequence[ChainRow], spot: Decimal) -> ChainAnalytics:
    """All the chain statistics above in one object."""
    return ChainAnalytics(
        pcr_oi=pcr_oi(rows),
        pcr_volume=pcr_volume(rows),
        max_pain=max_pain(rows),
        atm_strike=atm_strike(rows, spot),
        atm_iv=atm_iv(rows, spot),
        total_call_oi=_sum(rows, "call", "oi"),
        total_put_oi=_sum(rows, "put", "oi"),
    )
