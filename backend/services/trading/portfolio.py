"""Portfolio views (summary, positions, holdings, trades), closing positions, stops and sizing.

Prices for every open position come from ONE batched ``market_data.quotes`` call per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from backend.domain.errors import NotFound, ValidationFailed
from backend.domain.orders.types import Product
from backend.domain.risk import PositionSizer
from backend.domain.risk.stops import ProtectedPosition
from backend.extensions import db
from backend.models.trading import Order, Position, Trade, TradingAccount
from backend.services.pagination import Page, keyset_page
from backend.services.trading import risk
from backend.services.trading.accounts import cash_figures, positions_and_reserved, resolve_account
from backend.services.trading.common import lock_account

ZERO = Decimal(0)


@dataclass
class PositionView:
    symbol: str
    product: str
    quantity: int
    average_price: Decimal
    cost_basis: Decimal
    ltp: Decimal | None
    market_value: Decimal | None
    unrealised_pnl: Decimal | None
    realised_pnl: Decimal
    stops: dict | None
    account_id: int


def _prices(symbols: list[str]) -> dict[str, Decimal]:
    if not symbols:
        return {}
    from backend.services import market_data

    return {q.symbol.upper(): q.ltp for q in market_data.quotes(symbols)}  # one batched call


def _positions(acct: TradingAccount) -> list[Position]:
    """The account's open positions, by symbol."""
    stmt = select(Position).where(Position.account_id == acct.id, Position.quantity != 0)
    return list(db.session.scalars(stmt.order_by(Position.symbol)))


def _view(p: Position, prices: dict[str, Decimal]) -> PositionView:
    ltp = prices.get(p.symbol)
    cost = Decimal(p.cost_basis)
    mv = None if ltp is None else p.quantity * ltp
    return PositionView(
        symbol=p.symbol,
        product=p.product,
        quantity=p.quantity,
        average_price=(cost / p.quantity).quantize(Decimal("0.0001")) if p.quantity else ZERO,
        cost_basis=cost,
        ltp=ltp,
        market_value=mv,
        unrealised_pnl=None if mv is None else mv - cost,
        realised_pnl=Decimal(p.realised_pnl),
        stops=p.stops,
        account_id=p.account_id,
    )


def positions(user: Any, account_id: int | None) -> list[PositionView]:
    acct = resolve_account(user, account_id)
    rows = _positions(acct)
    prices = _prices([p.symbol for p in rows])
    return [_view(p, prices) for p in rows]


def holdings(user: Any, account_id: int | None) -> list[PositionView]:
    return [p for p in positions(user, account_id) if p.product == "D" and p.quantity > 0]


def summary(user: Any, account_id: int | None) -> dict[str, Any]:
    acct = resolve_account(user, account_id)
    rows, reserved = positions_and_reserved(acct)
    open_rows = [p for p in rows if p.quantity]
    prices = _prices([p.symbol for p in open_rows])
    views = [_view(p, prices) for p in open_rows]
    figs = cash_figures(acct, rows, risk.limits_for(acct).short_margin_pct, reserved)
    value = sum((v.market_value for v in views if v.market_value is not None), ZERO)
    unrealised = sum((v.unrealised_pnl for v in views if v.unrealised_pnl is not None), ZERO)
    realised = sum((Decimal(p.realised_pnl) for p in rows), ZERO)
    st = risk.breaker_state(acct)
    return {
        "account_id": acct.id,
        "account_name": acct.name,
        "mode": acct.mode,
        "starting_cash": acct.starting_cash,
        "cash": figs.cash,
        "available_cash": figs.available,
        "margin_used": figs.margin_used,
        "positions_value": value,
        "equity": figs.cash + value,
        "realised_pnl": realised,
        "unrealised_pnl": unrealised,
        "day_pnl": st.day_realised_pnl + unrealised,
        "open_positions": len(views),
    }


def trades(user: Any, account_id: int | None, symbol: str | None, limit: int, cursor: dict | None) -> Page:
    acct = resolve_account(user, account_id)
    stmt = select(Trade).where(Trade.account_id == acct.id)
    if symbol:
        stmt = stmt.where(Trade.symbol == symbol.upper())
    return keyset_page(stmt, Trade.id, limit, cursor)


def _position_or_404(acct: TradingAccount, symbol: str, product: str | None) -> Position:
    """The open position of ``symbol`` in ``product``; without a product, the only open one."""
    stmt = select(Position).where(
        Position.account_id == acct.id, Position.symbol == symbol.upper(), Position.quantity != 0
    )
    if product is not None:
        stmt = stmt.where(Position.product == product)
    found = list(db.session.scalars(stmt.order_by(Position.product)))
    if not found:
        raise NotFound("No open position.", {"symbol": symbol, "product": product}, code="POSITION_NOT_FOUND")
    if len(found) > 1:
        raise ValidationFailed(
            "This symbol is held intraday and delivery: say which position.",
            {"fields": {"product": ["Held as I and D: give product I or D."]}},
        )
    return found[0]


def close_position(user: Any, account_id: int | None, symbol: str, product: str | None = None) -> Order:
    """Flatten one position with a MARKET order tagged ``close``, in the position's own product (a
    delivery holding is sold as D, so delivery charges apply). The position's working stop and
    take-profit orders are cancelled, and its stops cleared, in the transaction that accepts the close;
    a refused close leaves them as they were."""
    from backend.services.trading.orders.prepare import prepare, quote_for, validate_request
    from backend.services.trading.orders.stops import place_exit

    acct = resolve_account(user, account_id)
    p = _position_or_404(acct, symbol, product)
    data = {
        "account_id": acct.id,
        "symbol": p.symbol,
        "side": "SELL" if p.quantity > 0 else "BUY",
        "type": "MARKET",
        "product": p.product,
        "quantity": abs(p.quantity),
        "tag": "close",
    }
    ins, req = prepare(data, None)
    quote = quote_for(ins.symbol)
    validate_request(req, ins, quote.ltp)
    row, _ = place_exit(user, acct.id, req, ins, quote, p.quantity)
    return row


def close_all(user: Any, account_id: int | None) -> list[Order]:
    acct = resolve_account(user, account_id)
    out = []
    for p in _positions(acct):
        out.append(close_position(user, acct.id, p.symbol, p.product))
    return out


def set_stops(
    user: Any, account_id: int | None, symbol: str, data: dict[str, Any], product: str | None = None
) -> PositionView:
    """Attach (or with all fields empty, remove) stop-loss / take-profit / trailing exits."""
    acct = resolve_account(user, account_id)
    found = _position_or_404(acct, symbol, product)
    acct = lock_account(acct.id)
    p = db.session.get(Position, found.id, populate_existing=True)
    if p is None or p.quantity == 0:
        db.session.rollback()
        raise NotFound("No open position.", {"symbol": symbol}, code="POSITION_NOT_FOUND")
    keys = ("stop_loss", "take_profit", "trailing_abs", "trailing_pct")
    if all(data.get(k) is None for k in keys):
        p.stops = None
    else:
        entry = (Decimal(p.cost_basis) / p.quantity).quantize(Decimal("0.0001"))
        try:
            pp = ProtectedPosition(
                symbol=p.symbol,
                qty=p.quantity,
                product=Product(p.product),
                entry_price=entry,
                **{k: data.get(k) for k in keys},
            )
        except ValidationFailed as exc:
            db.session.rollback()
            raise ValidationFailed(
                exc.message, {"fields": {k: [str(v)] for k, v in exc.details.items()}}
            ) from None
        p.stops = pp.to_dict()
    db.session.commit()
    return _view(p, {})


def suggest_quantity(
    user: Any, account_id: int | None, symbol: str, price: Decimal | None, stop_price: Decimal | None
) -> dict[str, Any]:
    from backend.services import market_data

    acct = resolve_account(user, account_id)
    ins = market_data.find_instrument(symbol)
    if ins is None:
        raise ValidationFailed("Unknown symbol.", {"fields": {"symbol": [f"Unknown symbol: {symbol}."]}})
    sym = ins.trading_symbol.upper()
    rows = _positions(acct)
    prices = _prices(sorted({p.symbol for p in rows} | {sym}))
    entry = price if price is not None else prices.get(sym)
    if entry is None:
        raise ValidationFailed(
            "No price available.", {"fields": {"price": ["Give a price: no quote available."]}}
        )
    equity = Decimal(acct.cash) + sum(
        (p.quantity * prices[p.symbol] for p in rows if p.symbol in prices), ZERO
    )
    existing = next((abs(p.quantity * prices.get(p.symbol, ZERO)) for p in rows if p.symbol == sym), ZERO)
    limits = risk.limits_for(acct)
    sizer = PositionSizer(limits.max_position_pct_equity, limits.risk_per_trade_pct)
    try:
        s = sizer.suggest(equity, entry, int(ins.lot_size or 1), stop_price, existing)
    except ValidationFailed as exc:
        raise ValidationFailed(
            exc.message, {"fields": {k: [str(v)] for k, v in exc.details.items()}}
        ) from None
    return {
        "symbol": sym,
        "quantity": s.quantity,
        "by_value": s.by_value,
        "by_risk": s.by_risk,
        "binding": s.binding,
        "explanation": s.explanation,
        "equity": equity,
        "price": entry,
        "stop_price": stop_price,
    }
