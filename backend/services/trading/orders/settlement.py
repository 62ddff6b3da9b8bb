"""Expiry settlement of paper F&O positions, after the close of each expiry day.

Index options and futures are cash settled at the final settlement price, the underlying index's
close on the expiry day (NSE "Settlement Price" schedule; the rules are in
backend/domain/orders/settlement.py). For every paper position still open in a contract that
expired on or before the day, one transaction under the account lock:

* records the settlement as a filled order tagged ``expiry`` (``client_order_id``
  ``expiry:<expiry>:<product>:<symbol>``, so a second run cannot book it again), with its trade at the
  settlement price: intrinsic value for options (0 out of the money), the final price for futures;
* posts the ledger: the settlement value (``fill``) and, for an exercised long option, the exercise
  STT (``charge``);
* closes the position (average-cost realised P&L), releases its F&O margin and cancels working
  orders left on the contract;
* feeds the circuit breaker like any closing trade (``TradeTally``, the path traded exits take): the
  account's positions settled at one expiry are ONE trade, their realised P&L net of exercise STT
  summed, as the closing legs of one basket are (docs/trading.md, "Expiry settlement and the breaker");
* writes an audit row ``trading.expiry_settled`` and, after the commit, sends ``order_update``,
  ``fill``, ``position_update`` and one ``expiry_settlement`` event per account.

Running the job twice settles once: the second run finds the positions flat (and the order key
taken). Live accounts are settled by the broker; reconciliation brings that in. Only index
derivatives are cash settled: stock F&O is settled by delivery of the shares, which is not
simulated, so such a position (from an Upstox instrument file) is left open and logged.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from backend.domain.errors import NotFound, ValidationFailed
from backend.domain.market.provider import daily_bar_ts
from backend.domain.orders.settlement import Settlement, settle_position
from backend.domain.orders.types import OrderStatus, Product
from backend.extensions import db
from backend.models.trading import Order, Position, TradingAccount, is_working
from backend.services import audit
from backend.services.trading.common import Events, lock_account, trading_config
from backend.services.trading.paper_broker import TradeTally, apply_fill, set_status

log = logging.getLogger(__name__)
TAG = "expiry"


def settlement_key(expiry: date, product: str, symbol: str) -> str:
    return f"expiry:{expiry.isoformat()}:{product}:{symbol}"[:64]


def final_settlement_price(underlying: str, expiry: date) -> Decimal:
    """The underlying's close on ``expiry`` (its daily bar), the exchange's final settlement price."""
    from backend.services import market_data

    ts = daily_bar_ts(expiry)
    bars = market_data.candles(underlying, "1d", ts, ts)
    if not bars:
        raise NotFound(
            f"no close of {underlying} on {expiry.isoformat()} yet: settle after the close",
            {"underlying": underlying, "date": expiry.isoformat()},
            code="NO_SETTLEMENT_PRICE",
        )
    return Decimal(bars[-1].close)


def _expired_positions(day: date) -> dict[int, list[tuple[int, Any]]]:
    """Open paper positions in contracts expiring on or before ``day`` whose expiry's F&O close has
    passed on the market clock (a contract still trading is never settled), by account."""
    from backend.services import market_calendar, market_data

    cal, now = market_calendar.calendar(), market_calendar.now()

    rows = db.session.execute(
        select(Position.account_id, Position.id, Position.symbol)
        .join(TradingAccount, TradingAccount.id == Position.account_id)
        .where(Position.quantity != 0, TradingAccount.mode == "paper")
        .order_by(Position.account_id, Position.id)
    ).all()
    out: dict[int, list[tuple[int, Any]]] = defaultdict(list)
    for account_id, pid, symbol in rows:
        ins = market_data.find_instrument(symbol)
        if ins is None or ins.instrument_type not in ("CE", "PE", "FUT") or ins.expiry is None:
            continue
        if not _is_index(market_data, ins.underlying):
            # stock derivatives settle by delivery of the shares (SEBI, physical settlement of stock
            # F&O since Oct 2019): not simulated, left open and logged
            log.warning("physically settled contract not settled", extra={"symbol": symbol})
            continue
        if ins.expiry <= day and now >= cal.session_close(ins.expiry, "NSE_FO"):
            out[account_id].append((pid, ins))
    db.session.rollback()
    return out


def _is_index(market_data: Any, symbol: str | None) -> bool:
    underlying = market_data.find_instrument(symbol) if symbol else None
    return underlying is not None and underlying.instrument_type == "INDEX"


def _book(
    acct: TradingAccount, pos: Position, ins: Any, s: Settlement, events: Events, tally: TradeTally
) -> dict[str, Any]:
    """Persist one settlement in the caller's transaction (account locked, position loaded).
    Its realised P&L net of STT goes into ``tally``, which the caller records for the breaker."""
    expiry = ins.expiry
    row = Order(
        account_id=acct.id,
        user_id=acct.user_id,
        client_order_id=settlement_key(expiry, pos.product, pos.symbol),
        symbol=pos.symbol,
        side=s.side.value,
        type="MARKET",
        product=pos.product,
        validity="DAY",
        quantity=s.quantity,
        filled_quantity=0,  # apply_fill books the fill and the average price
        price=None,
        status=OrderStatus.FILLED.value,
        status_message=f"{s.outcome} at expiry {expiry.isoformat()} (final price {s.final_price})",
        reject_reasons=[],
        reserved_cash=Decimal(0),
        estimated_charges=s.stt,
        margin=Decimal(0),
        tag=TAG,
    )
    db.session.add(row)
    released = Decimal(pos.margin or 0)
    note = f"{s.outcome}: {s.side.value} {s.quantity} {pos.symbol} @ {s.price} (final {s.final_price})"
    # one fill path with traded orders, the breaker's included: the caller records the tally
    trade = apply_fill(
        acct,
        row,
        s.quantity,
        s.price,
        "FO",
        events,
        positions={(pos.symbol, pos.product): pos},
        tally=tally,
        charges=s.stt,
        note=note[:255],
        charge_note="STT on exercise",
    )
    db.session.flush()  # ids for the audit row and the events
    # orders left working on an expired contract can never trade
    for w in db.session.scalars(
        select(Order).where(Order.account_id == acct.id, Order.symbol == pos.symbol, is_working())
    ):
        set_status(w, OrderStatus.CANCELLED, "contract expired")
        events.order(w)
    events.order(row)
    detail = {
        "account_id": acct.id,
        "symbol": pos.symbol,
        "product": pos.product,
        "outcome": s.outcome,
        "expiry": expiry.isoformat(),
        "final_price": str(s.final_price),
        "quantity": s.quantity if s.side.value == "SELL" else -s.quantity,
        "settlement_price": str(s.price),
        "value": str(s.value),
        "stt": str(s.stt),
        "realised_pnl": str(trade.realised_pnl),
        "margin_released": str(released - Decimal(pos.margin or 0)),
        "order_id": row.id,
    }
    audit.record(
        "trading.expiry_settled", actor_id=None, target_type="position", target_id=pos.id, details=detail
    )
    return detail


def settle_expiry(day: date, prices: Mapping[str, Decimal] | None = None) -> dict[str, Any]:
    """Settle every paper position in contracts that expired on or before ``day``.

    ``prices``: final settlement prices by underlying for contracts expiring on ``day`` (default,
    and for earlier expiries: each underlying's close on the contract's expiry day from market data).
    Returns counts by outcome, and the failures."""
    given = {k.upper(): Decimal(v) for k, v in (prices or {}).items()}
    found: dict[tuple[str, date], Decimal] = {}
    totals: dict[str, Any] = {"accounts": 0, "positions": 0, "failed": []}
    sched = trading_config().charges
    for account_id, held in _expired_positions(day).items():
        events = Events()
        done: list[dict[str, Any]] = []
        try:
            acct = lock_account(account_id)
            # The exchange closes an account's contracts of one expiry at once, not one decision
            # per leg: one trade for the breaker per expiry, like a basket exit (counted per leg, a
            # hedged structure would be several losses, and position order would decide a reset).
            tallies: dict[date, TradeTally] = {}
            for position_id, ins in held:
                pos = db.session.get(Position, position_id, populate_existing=True)
                if pos is None or pos.quantity == 0:
                    continue  # settled meanwhile
                key = (ins.underlying.upper(), ins.expiry)
                if key not in found:
                    # a price given by hand is the close of ``day``: it settles that day's expiry only
                    by_hand = given.get(key[0]) if ins.expiry == day else None
                    found[key] = by_hand or final_settlement_price(key[0], ins.expiry)
                rates = sched.segments_on(ins.expiry).get("FO")
                product_rates = rates.products.get(Product(pos.product)) if rates else None
                stt_pct = product_rates.stt_exercise_pct if product_rates else Decimal(0)
                s = settle_position(ins.instrument_type, pos.quantity, found[key], ins.strike, stt_pct)
                tally = tallies.setdefault(ins.expiry, TradeTally())
                done.append(_book(acct, pos, ins, s, events, tally))
            for expiry in sorted(tallies):
                tallies[expiry].record(acct, events)  # in this transaction: settled and counted, or neither
            if done:
                events.add(
                    acct.user_id,
                    "expiry_settlement",
                    {"account_id": account_id, "date": day.isoformat(), "positions": done},
                )
            db.session.commit()
        except (NotFound, ValidationFailed) as exc:
            db.session.rollback()
            totals["failed"].append({"account_id": account_id, "code": exc.code, "message": exc.message})
            log.warning("expiry settlement failed", extra={"account_id": account_id, "error": exc.message})
            continue
        except Exception:
            db.session.rollback()
            log.exception("expiry settlement failed", extra={"account_id": account_id})
            totals["failed"].append({"account_id": account_id, "code": "INTERNAL", "message": "see the log"})
            continue
        events.send()
        if done:
            totals["accounts"] += 1
            totals["positions"] += len(done)
            for d in done:
                totals[d["outcome"]] = totals.get(d["outcome"], 0) + 1
    log.info("expiry settlement done", extra={"day": day.isoformat(), **totals})
    return totals


__all__ = ["final_settlement_price", "settle_expiry", "settlement_key"]
